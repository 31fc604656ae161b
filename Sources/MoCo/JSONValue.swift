import Foundation

/// A JSON document as parsed, before it is decoded into a type: what `LayeredDecoder` reads,
/// so that it can tell a misspelt key and a value of the wrong type by their path.
indirect enum JSONValue: Decodable, Equatable {
    case null
    case bool(Bool)
    /// An integer (kept exact up to UInt64.max, beyond a Double's 2^53).
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .int(i) }
        else if let u = try? c.decode(UInt64.self) { self = .uint(u) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    /// Parses `bytes`; the error says where the text stops being JSON.
    static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        do { return try JSONDecoder().decode(JSONValue.self, from: Data(bytes)) }
        catch let DecodingError.dataCorrupted(context) {
            let detail = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            throw ConfigError("not valid JSON: \(detail ?? context.debugDescription)")
        }
    }

    /// How a value is named in an error message: its kind, and short values themselves.
    var summary: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return "\(b)"
        case .int(let i): return "the integer \(i)"
        case .uint(let u): return "the integer \(u)"
        case .double(let d): return "the number \(d)"
        case .string(let s): return s.count <= 40 ? "the string \"\(s)\"" : "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}
