/// Decodes a type from a JSON document laid over a base document: each value comes from `top`
/// where it has one, else from `base` (objects merge key by key, at every depth; an array or a
/// scalar is taken whole from `top`). `moco train --config FILE` decodes the file over the
/// preset's configuration this way, so a file may hold every setting (a saved `config.json`)
/// or a few.
///
/// Strict where `JSONDecoder` is lenient or vague: every key of `top` must be read by the type
/// (`unknownKeys`), and a value of the wrong type is an error naming its key path
/// (`moco.temperature: expected a number, got the string "0.2"`).
struct LayeredDecoder {
    /// The key paths the decoded type asked for, written `moco.temperature`, `schedule.step.milestones[0]`.
    final class Reads { var paths: Set<String> = [] }

    /// Decodes `T` from `top` over `base`; throws `ConfigError` naming the key path of the
    /// first value of a wrong type, then of every key of `top` that `T` does not have.
    static func decode<T: Decodable>(_ type: T.Type, top: JSONValue, base: JSONValue) throws -> T {
        let reads = Reads()
        let value: T
        do { value = try T(from: Node(top: top, base: base, codingPath: [], reads: reads)) }
        catch let e as DecodingError { throw ConfigError(describe(e)) }
        let unknown = unknownKeys(in: top, path: "", reads: reads.paths)
        if !unknown.isEmpty {
            throw ConfigError("unknown key\(unknown.count == 1 ? "" : "s") \(unknown.joined(separator: ", "))")
        }
        return value
    }

    /// The keys of `value`'s objects (at any depth) that were never read, by path.
    static func unknownKeys(in value: JSONValue, path: String, reads: Set<String>) -> [String] {
        switch value {
        case .object(let o):
            return o.keys.sorted().flatMap { k -> [String] in
                let p = path.isEmpty ? k : path + "." + k
                return reads.contains(p) ? unknownKeys(in: o[k]!, path: p, reads: reads) : [p]
            }
        case .array(let a):
            return a.indices.flatMap { unknownKeys(in: a[$0], path: path + "[\($0)]", reads: reads) }
        default:
            return []
        }
    }

    static func path(_ codingPath: [CodingKey]) -> String {
        var s = ""
        for k in codingPath {
            if let i = k.intValue, k.stringValue == "Index \(i)" || k.stringValue == "\(i)" { s += "[\(i)]" }
            else { s += s.isEmpty ? k.stringValue : "." + k.stringValue }
        }
        return s.isEmpty ? "(top level)" : s
    }

    /// Messages for the errors that the decoded types themselves throw (e.g. an enum's raw
    /// value that names no case).
    static func describe(_ e: DecodingError) -> String {
        switch e {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            return "\(path(c.codingPath)): \(c.debugDescription)"
        case .keyNotFound(let k, let c):
            return "\(path(c.codingPath + [k])): missing"
        @unknown default:
            return "\(e)"
        }
    }

    // MARK: - The decoder

    /// The value at one coding path: from `top` (the file) and `base` (the preset), either absent.
    struct Node: Decoder {
        let top: JSONValue?
        let base: JSONValue?
        let codingPath: [CodingKey]
        let reads: Reads
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        /// The value that a scalar or array decodes from.
        var value: JSONValue? { top ?? base }

        func mismatch(_ expected: String) -> ConfigError {
            ConfigError("\(LayeredDecoder.path(codingPath)): expected \(expected), got \(value?.summary ?? "nothing")")
        }

        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            func object(_ v: JSONValue?) throws -> [String: JSONValue]? {
                guard let v else { return nil }
                guard case .object(let o) = v else { throw mismatch("an object") }
                return o
            }
            let t = try object(top), b = try object(base)
            return KeyedDecodingContainer(Keyed<Key>(node: self, top: t, base: b))
        }

        func unkeyedContainer() throws -> UnkeyedDecodingContainer {
            guard case .array(let a)? = value else { throw mismatch("an array") }
            return Unkeyed(node: self, items: a)
        }

        func singleValueContainer() throws -> SingleValueDecodingContainer { Single(node: self) }

        func child(_ key: CodingKey, top: JSONValue?, base: JSONValue?) -> Node {
            Node(top: top, base: base, codingPath: codingPath + [key], reads: reads)
        }

        /// Decodes `T`: the JSON scalars directly (with range checks), anything else through
        /// its own `init(from:)`; an enum of named cases lists them when the name is wrong.
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            if let v = try scalar(type) { return v }
            if let choices = T.self as? any (CaseIterable & RawRepresentable).Type {
                let names = LayeredDecoder.names(of: choices)
                do { return try T(from: self) } catch is DecodingError {
                    throw ConfigError("\(LayeredDecoder.path(codingPath)): \(value?.summary ?? "nothing") is not one of \(names.joined(separator: ", "))")
                }
            }
            return try T(from: self)
        }

        private func scalar<T>(_ type: T.Type) throws -> T? {
            switch type {
            case is Bool.Type:
                guard case .bool(let b)? = value else { throw mismatch("true or false") }
                return (b as! T)
            case is String.Type:
                guard case .string(let s)? = value else { throw mismatch("a string") }
                return (s as! T)
            case is Double.Type: return (try number() as! T)
            case is Float.Type:
                let d = try number()
                guard Float(d).isFinite || !d.isFinite else { throw mismatch("a number within Float's range") }
                return (Float(d) as! T)
            case is Int.Type: return (try integer(Int.self) as! T)
            case is Int8.Type: return (try integer(Int8.self) as! T)
            case is Int16.Type: return (try integer(Int16.self) as! T)
            case is Int32.Type: return (try integer(Int32.self) as! T)
            case is Int64.Type: return (try integer(Int64.self) as! T)
            case is UInt.Type: return (try integer(UInt.self) as! T)
            case is UInt8.Type: return (try integer(UInt8.self) as! T)
            case is UInt16.Type: return (try integer(UInt16.self) as! T)
            case is UInt32.Type: return (try integer(UInt32.self) as! T)
            case is UInt64.Type: return (try integer(UInt64.self) as! T)
            default: return nil
            }
        }

        private func number() throws -> Double {
            switch value {
            case .int(let i)?: return Double(i)
            case .uint(let u)?: return Double(u)
            case .double(let d)?: return d
            default: throw mismatch("a number")
            }
        }

        private func integer<I: FixedWidthInteger>(_: I.Type) throws -> I {
            let exact: I?
            switch value {
            case .int(let i)?: exact = I(exactly: i)
            case .uint(let u)?: exact = I(exactly: u)
            case .double(let d)?: exact = d.rounded() == d ? I(exactly: d) : nil
            default: throw mismatch("an integer")
            }
            guard let exact else { throw mismatch("an integer in \(I.min)...\(I.max)") }
            return exact
        }
    }

    static func names<C: CaseIterable & RawRepresentable>(of _: C.Type) -> [String] {
        C.allCases.map { "\($0.rawValue)" }
    }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let node: Node
        let top: [String: JSONValue]?
        let base: [String: JSONValue]?
        var codingPath: [CodingKey] { node.codingPath }

        /// The keys of the file's object where it has one (an enum's case is the one key it
        /// gives), else of the base's.
        var allKeys: [Key] { (top ?? base ?? [:]).keys.compactMap { Key(stringValue: $0) } }

        func note(_ key: CodingKey) {
            node.reads.paths.insert(LayeredDecoder.path(codingPath + [key]))
        }

        func contains(_ key: Key) -> Bool {
            note(key)
            return top?[key.stringValue] != nil || base?[key.stringValue] != nil
        }

        func child(_ key: CodingKey) -> Node {
            note(key)
            return node.child(key, top: top?[key.stringValue], base: base?[key.stringValue])
        }

        func decodeNil(forKey key: Key) throws -> Bool {
            let c = child(key)
            return c.value == nil || c.value == .null
        }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            let c = child(key)
            guard c.value != nil else {
                throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing"))
            }
            return try c.decode(type)
        }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
            -> KeyedDecodingContainer<NestedKey> {
            try child(key).container(keyedBy: type)
        }

        func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer {
            try child(key).unkeyedContainer()
        }

        func superDecoder() throws -> Decoder { child(SuperKey.super) }
        func superDecoder(forKey key: Key) throws -> Decoder { child(key) }
    }

    enum SuperKey: String, CodingKey { case `super` }

    struct IndexKey: CodingKey {
        let intValue: Int?
        var stringValue: String { "\(intValue!)" }
        init(_ i: Int) { intValue = i }
        init?(stringValue: String) { return nil }
        init?(intValue: Int) { self.intValue = intValue }
    }

    struct Unkeyed: UnkeyedDecodingContainer {
        let node: Node
        let items: [JSONValue]
        var currentIndex = 0
        var codingPath: [CodingKey] { node.codingPath }
        var count: Int? { items.count }
        var isAtEnd: Bool { currentIndex >= items.count }

        init(node: Node, items: [JSONValue]) { self.node = node; self.items = items }

        mutating func next() throws -> Node {
            guard !isAtEnd else {
                throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "the array has only \(items.count) element(s)"))
            }
            defer { currentIndex += 1 }
            return node.child(IndexKey(currentIndex), top: items[currentIndex], base: nil)
        }

        mutating func decodeNil() throws -> Bool {
            guard !isAtEnd, items[currentIndex] == .null else { return false }
            currentIndex += 1
            return true
        }

        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next().decode(type) }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            try next().container(keyedBy: type)
        }
        mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer { try next().unkeyedContainer() }
        mutating func superDecoder() throws -> Decoder { try next() }
    }

    struct Single: SingleValueDecodingContainer {
        let node: Node
        var codingPath: [CodingKey] { node.codingPath }
        func decodeNil() -> Bool { node.value == nil || node.value == .null }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try node.decode(type) }
    }
}
