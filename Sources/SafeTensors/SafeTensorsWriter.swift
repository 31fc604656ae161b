/// Builds a safetensors file (layout documented on `SafeTensorsFile`).
///
/// The output follows the reference implementation's conventions so that Python's
/// `safetensors.torch.load_file` and `safe_open` read it:
/// - compact JSON header, `__metadata__` first (omitted when empty, keys sorted), then one entry
///   per tensor as `{"dtype":..,"shape":[..],"data_offsets":[begin,end]}`;
/// - header padded with spaces to a multiple of 8 bytes, so the data section starts 8-aligned;
/// - tensors sorted by name (bytewise), their data contiguous in that order with no holes.
///
/// `add` copies the data immediately. Invalid additions (element count not matching the shape,
/// duplicate or reserved name) do not crash: they are recorded and `write(to:)` throws an error
/// naming the tensor.
public struct SafeTensorsWriter: Sendable {
    private struct Entry: Sendable {
        var dtype: SafeTensorsDType
        var shape: [Int]
        var data: [UInt8]
    }

    /// String-to-string metadata stored under `__metadata__`.
    public var metadata: [String: String] = [:]
    private var entries: [String: Entry] = [:]
    private var problem: String?

    public init() {}

    /// Names added so far, in file order.
    public var names: [String] { entries.keys.sorted(by: bytewiseLess) }

    public mutating func add(_ name: String, shape: [Int], floats: UnsafeBufferPointer<Float>) {
        add(name, .f32, shape, UnsafeRawBufferPointer(floats), count: floats.count)
    }

    public mutating func add(_ name: String, shape: [Int], floats: [Float]) {
        floats.withUnsafeBufferPointer { add(name, shape: shape, floats: $0) }
    }

    public mutating func add(_ name: String, shape: [Int], int64s: UnsafeBufferPointer<Int64>) {
        add(name, .i64, shape, UnsafeRawBufferPointer(int64s), count: int64s.count)
    }

    public mutating func add(_ name: String, shape: [Int], int64s: [Int64]) {
        int64s.withUnsafeBufferPointer { add(name, shape: shape, int64s: $0) }
    }

    private mutating func add(_ name: String, _ dtype: SafeTensorsDType, _ shape: [Int],
                              _ raw: UnsafeRawBufferPointer, count: Int) {
        func reject(_ m: String) { if problem == nil { problem = "tensor '\(name)': \(m)" } }
        guard name != SafeTensorsFile.metadataKey else { return reject("name is reserved for metadata") }
        guard entries[name] == nil else { return reject("added twice") }
        guard shape.allSatisfy({ $0 >= 0 }) else { return reject("shape \(formatShape(shape)) has a negative dimension") }
        var elements = 1
        for d in shape {
            let (p, o) = elements.multipliedReportingOverflow(by: d)
            guard !o else { return reject("shape \(formatShape(shape)) is too large") }
            elements = p
        }
        guard elements == count else {
            return reject("shape \(formatShape(shape)) has \(elements) elements, but \(count) were given")
        }
        entries[name] = Entry(dtype: dtype, shape: shape, data: [UInt8](raw))
    }

    /// Calls `body` with each tensor's bytes in file order: together they are exactly the data
    /// section of the file `write(to:)` produces (for checksums over it, e.g. CRC-32).
    public func forEachData(_ body: (UnsafeRawBufferPointer) -> Void) {
        for name in names { entries[name]!.data.withUnsafeBytes(body) }
    }

    /// The complete file image. Traps if an `add` was invalid (use `write(to:)` to get an error).
    public func serialized() -> [UInt8] {
        if let problem { fatalError("SafeTensorsWriter: \(problem)") }
        return build()
    }

    /// Writes the file atomically via `AtomicFile.write` (temp file, fsync, rename, directory fsync).
    public func write(to path: String) throws {
        if let problem { throw SafeTensorsError(path: path, message: problem) }
        try AtomicFile.write(build(), to: path)
    }

    private func build() -> [UInt8] {
        let order = names
        var json = JSONWriter()
        json.raw("{")
        var first = true
        if !metadata.isEmpty {
            json.string(SafeTensorsFile.metadataKey)
            json.raw(":{")
            for (i, key) in metadata.keys.sorted(by: bytewiseLess).enumerated() {
                if i > 0 { json.raw(",") }
                json.string(key)
                json.raw(":")
                json.string(metadata[key]!)
            }
            json.raw("}")
            first = false
        }
        var offset = 0
        for name in order {
            let e = entries[name]!
            if !first { json.raw(",") }
            first = false
            json.string(name)
            json.raw(":{\"dtype\":")
            json.string(e.dtype.rawValue)
            json.raw(",\"shape\":")
            json.intList(e.shape)
            json.raw(",\"data_offsets\":")
            json.intList([offset, offset + e.data.count])
            json.raw("}")
            offset += e.data.count
        }
        json.raw("}")

        var header = json.bytes
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))

        var out: [UInt8] = []
        out.reserveCapacity(8 + header.count + offset)
        var n = UInt64(header.count)
        for _ in 0..<8 { out.append(UInt8(truncatingIfNeeded: n)); n >>= 8 }
        out.append(contentsOf: header)
        for name in order { out.append(contentsOf: entries[name]!.data) }
        return out
    }
}

/// Orders strings by their UTF-8 bytes, as the reference implementation (Rust `String` ordering) does.
func bytewiseLess(_ a: String, _ b: String) -> Bool {
    a.utf8.lexicographicallyPrecedes(b.utf8)
}
