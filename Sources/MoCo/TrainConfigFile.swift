import Foundation

/// A configuration file for `moco train --config FILE`: a JSON object in the layout of
/// `OUT/config.json` (`TrainConfig`'s keys, `moco`, `engine` and `augment` nested). It may hold
/// every key (a saved `config.json`, which then re-runs exactly) or only some: the others come
/// from the preset its `preset` key names (else `--preset`, else moco-v2), and flags given on
/// the command line override both. An unknown key or a value of the wrong type, at any depth,
/// is an error naming its key path.
public struct TrainConfigFile {
    /// The path, for messages.
    public let name: String
    let document: [String: JSONValue]

    /// Parses a file's bytes (the same on every rank: rank 0 reads them, `read(path:)`).
    public init(bytes: [UInt8], name: String) throws {
        self.name = name
        let value: JSONValue
        do { value = try JSONValue.parse(bytes) } catch { throw ConfigError("--config \(name): \(error)") }
        guard case .object(let o) = value else {
            throw ConfigError("--config \(name): expected a JSON object of settings (as OUT/config.json), got \(value.summary)")
        }
        document = o
    }

    /// The file's bytes, or an error saying why it cannot be read.
    public static func read(path: String) throws -> [UInt8] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw ConfigError("--config \(path): no such file")
        }
        guard !isDir.boolValue else { throw ConfigError("--config \(path): is a directory, not a configuration file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError("--config \(path): cannot read it (permissions?)")
        }
        return [UInt8](data)
    }

    /// The preset the file names (`"preset"`), if any.
    public func preset() throws -> String? {
        guard let v = document["preset"] else { return nil }
        guard case .string(let s) = v else { throw ConfigError("--config \(name): preset: expected a string, got \(v.summary)") }
        return s
    }

    /// Whether the file sets the top-level key `key` (e.g. `out`).
    public func sets(_ key: String) -> Bool { document[key] != nil }

    /// The file's settings laid over `base`: every key the file has replaces the base's value
    /// (objects key by key), every other value stays the base's.
    public func decode(over base: TrainConfig) throws -> TrainConfig {
        let encoder = JSONEncoder()
        let baseValue = try JSONValue.parse([UInt8](try encoder.encode(base)))
        do { return try LayeredDecoder.decode(TrainConfig.self, top: .object(document), base: baseValue) }
        catch let e as ConfigError { throw ConfigError("--config \(name): \(e.description)") }
    }
}
