import Foundation
import SwiftProtobuf
import SafeTensors

/// Reading and pruning the event files of a folder (`EventFileWriter`'s output).
public enum EventFiles {
    /// The event files in `directory`, in the order TensorBoard reads them (by name).
    public static func list(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix(EventFileWriter.prefix) && !isTemporary($0) }.sorted().map { directory + "/" + $0 }
    }

    /// `NAME.tmp.PID`: an `AtomicFile` write of an event file that a crash interrupted.
    static func isTemporary(_ name: String) -> Bool {
        guard let r = name.range(of: ".tmp.", options: .backwards) else { return false }
        let pid = name[r.upperBound...]
        return !pid.isEmpty && pid.allSatisfy(\.isNumber)
    }

    /// A scalar as read back from a file.
    public struct Scalar: Equatable, Sendable {
        public var step: Int
        public var tag: String
        public var value: Float
        public var wallTime: Double
    }

    /// The decoded events of one file (checked against the TFRecord checksums).
    static func events(of path: String) throws -> [(raw: [UInt8], event: Tensorflow_Event?)] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SafeTensorsError(path: path, message: "cannot read")
        }
        return try TFRecord.records(in: [UInt8](data)).records.map { ($0, try? Tensorflow_Event(serializedBytes: $0)) }
    }

    /// Every scalar of `path`, in file order (for tests and tools; TensorBoard's own reader is
    /// the reference).
    public static func scalars(of path: String) throws -> [Scalar] {
        try events(of: path).flatMap { _, e -> [Scalar] in
            guard let e, case .summary(let s)? = e.what else { return [] }
            return s.value.compactMap { v in
                guard case .simpleValue(let x)? = v.value else { return nil }
                return Scalar(step: Int(e.step), tag: v.tag, value: x, wallTime: e.wallTime)
            }
        }
    }

    /// Removes, from every event file in `directory`, the summaries (scalars) of steps after
    /// `step`, and a final incomplete record: what a run that is continued from a checkpoint at `step`
    /// wrote after that checkpoint before it stopped (a crash, a failure), which the continued
    /// run writes anew. Each changed file is replaced atomically (`AtomicFile`); a file whose
    /// framing is damaged is left as it is and named in the result.
    /// Other events (the file version, `SessionLog`) stay.
    /// - Returns: how many summaries were removed, and the damaged files with their problem.
    @discardableResult
    public static func dropEvents(after step: Int, in directory: String) throws -> (dropped: Int, damaged: [String]) {
        var dropped = 0, damaged: [String] = []
        // TensorBoard would read a leftover of an interrupted rewrite as one more event file.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        where name.hasPrefix(EventFileWriter.prefix) && isTemporary(name) {
            try? FileManager.default.removeItem(atPath: directory + "/" + name)
        }
        for path in list(in: directory) {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue,
                  let data = FileManager.default.contents(atPath: path) else { continue }
            let bytes = [UInt8](data)
            let parsed: (records: [[UInt8]], validLength: Int)
            do { parsed = try TFRecord.records(in: bytes) } catch {
                damaged.append("\(path): \(error)")
                continue
            }
            let kept = parsed.records.filter { raw in
                guard let e = try? Tensorflow_Event(serializedBytes: raw), case .summary? = e.what else { return true }
                return e.step <= Int64(step)
            }
            guard kept.count < parsed.records.count || parsed.validLength < bytes.count else { continue }
            dropped += parsed.records.count - kept.count
            try AtomicFile.write(kept.flatMap(TFRecord.frame), to: path)
        }
        return (dropped, damaged)
    }
}
