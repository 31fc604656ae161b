#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

#if _endian(big)
#error("SafeTensors copies little-endian tensor data with memcpy and needs a little-endian host")
#endif

/// A safetensors file read fully into memory and validated.
///
/// Layout (https://github.com/huggingface/safetensors, "Format"):
///
///     [8 bytes]  N: UInt64, little-endian — length of the header
///     [N bytes]  header: UTF-8 JSON object
///                  "<tensor name>": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}
///                  "__metadata__": {"<key>": "<string value>", ...}        (optional)
///     [rest]     data section; each tensor's bytes are data[begin..<end], row-major, little-endian
///
/// `init` checks everything up front (sizes, JSON, dtypes, shapes, offsets in range, byte counts
/// matching shapes, no overlaps, no duplicate names) and throws a `SafeTensorsError` naming the
/// tensor or field at fault; accessors afterwards fail only for a missing name or a wrong dtype.
public final class SafeTensorsFile: Sendable {
    /// Default bound on the header length; a larger stated length is treated as corruption.
    /// The format allows 100 MB, but the parse tree of a header is about 30x its size (one boxed
    /// JSON value per element), so 16 MiB keeps a hostile header under ~0.5 GB of memory while
    /// holding ~500x the header of a ResNet-50 checkpoint (a ResNet-20 one is 34 kB).
    public static let defaultMaxHeaderBytes = 16 << 20

    /// Name reserved for the string-to-string metadata map in the header.
    public static let metadataKey = "__metadata__"

    public let path: String
    /// The header's `__metadata__` map (empty if absent).
    public let metadata: [String: String]
    /// Every tensor, by name.
    public let tensors: [String: SafeTensorInfo]

    /// The whole file.
    private let bytes: [UInt8]
    /// Offset of the data section in `bytes` (8 + header length).
    private let dataStart: Int

    /// Reads and validates the file at `path`.
    public convenience init(path: String, maxHeaderBytes: Int = defaultMaxHeaderBytes) throws {
        try self.init(bytes: try readWholeFile(path), path: path, maxHeaderBytes: maxHeaderBytes)
    }

    /// Validates an in-memory safetensors image; `path` is only used in error messages.
    public init(bytes: [UInt8], path: String = "<memory>", maxHeaderBytes: Int = defaultMaxHeaderBytes) throws {
        func fail(_ message: String) -> SafeTensorsError { SafeTensorsError(path: path, message: message) }

        guard bytes.count >= 8 else {
            throw fail("file is \(bytes.count) bytes, shorter than the 8-byte header length field")
        }
        var n64: UInt64 = 0
        for i in (0..<8).reversed() { n64 = n64 << 8 | UInt64(bytes[i]) }
        guard n64 > 0 else { throw fail("header length 0") }
        guard n64 <= UInt64(max(maxHeaderBytes, 0)) else {
            throw fail("header length \(n64) exceeds the limit of \(maxHeaderBytes) bytes (corrupt file?)")
        }
        guard n64 <= UInt64(bytes.count - 8) else {
            throw fail("header length \(n64) exceeds file size \(bytes.count)")
        }
        let headerLength = Int(n64)
        let dataStart = 8 + headerLength
        let dataSize = bytes.count - dataStart

        let root: JSONValue = try bytes.withUnsafeBufferPointer { all in
            let header = UnsafeBufferPointer(rebasing: all[8..<dataStart])
            if let bad = firstInvalidUTF8(header) {
                throw fail("header is not valid UTF-8 (byte \(bad) of the header)")
            }
            let parsed: Result<JSONValue, JSONParseError> = Result { () throws(JSONParseError) in try JSONParser.parse(header) }
            switch parsed {
            case .success(let v): return v
            case .failure(let error):
                throw fail("header is not valid JSON: \(error.message) at byte \(error.offset) of the header")
            }
        }
        guard case .object(let members) = root else {
            throw fail("header is \(root.kindName), expected a JSON object")
        }

        var metadata: [String: String] = [:]
        var sawMetadata = false
        var tensors: [String: SafeTensorInfo] = [:]
        for (name, value) in members {
            if name == SafeTensorsFile.metadataKey {
                guard !sawMetadata else { throw fail("duplicate key '__metadata__'") }
                sawMetadata = true
                metadata = try parseMetadata(value, fail: fail)
                continue
            }
            guard tensors[name] == nil else { throw fail("duplicate tensor name '\(name)'") }
            tensors[name] = try parseEntry(name: name, value, dataSize: dataSize, fail: fail)
        }

        // Overlap check: sort non-empty ranges by start; each must begin at or after the previous end.
        let ranges = tensors.values.filter { $0.end > $0.begin }.sorted { ($0.begin, $0.name) < ($1.begin, $1.name) }
        for (a, b) in zip(ranges, ranges.dropFirst()) where b.begin < a.end {
            throw fail("tensors '\(a.name)' data_offsets [\(a.begin), \(a.end)] and '\(b.name)' data_offsets [\(b.begin), \(b.end)] overlap")
        }

        self.path = path
        self.metadata = metadata
        self.tensors = tensors
        self.bytes = bytes
        self.dataStart = dataStart
    }

    /// The data section (every byte after the header), e.g. to verify a checksum over it.
    public func withDataSection<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[dataStart...])) }
    }

    // MARK: - Lookup

    /// All tensor names, sorted.
    public var names: [String] { tensors.keys.sorted(by: bytewiseLess) }

    public func has(_ name: String) -> Bool { tensors[name] != nil }

    /// Tensor names starting with `prefix` (e.g. `"encoder_q."`), with the prefix removed, sorted.
    public func names(withPrefix prefix: String) -> [String] {
        // Compare UTF-8 bytes: `hasPrefix` on String uses Unicode equivalence, which is not what names mean.
        tensors.keys.filter { $0.utf8.starts(with: prefix.utf8) }
            .map { String(decoding: $0.utf8.dropFirst(prefix.utf8.count), as: UTF8.self) }
            .sorted(by: bytewiseLess)
    }

    /// The tensor's entry, or an error naming it if absent.
    public func info(_ name: String) throws -> SafeTensorInfo {
        guard let info = tensors[name] else { throw error("no tensor '\(name)' in file") }
        return info
    }

    public func shape(_ name: String) throws -> [Int] { try info(name).shape }

    /// Checks that `name` exists with exactly this dtype and shape.
    public func expect(_ name: String, dtype: SafeTensorsDType, shape: [Int]) throws {
        let t = try info(name)
        guard t.dtype == dtype else {
            throw error("tensor '\(name)': dtype \(t.dtype.rawValue) in file, model expects \(dtype.rawValue)")
        }
        guard t.shape == shape else {
            throw error("tensor '\(name)': shape \(formatShape(t.shape)) in file, model expects \(formatShape(shape))")
        }
    }

    // MARK: - Data

    /// The elements of an F32 tensor, row-major.
    public func floats(_ name: String) throws -> [Float] {
        let t = try checked(name, .f32)
        return [Float](unsafeUninitializedCapacity: t.elementCount) { buf, count in
            copy(t, to: UnsafeMutableRawPointer(buf.baseAddress))
            count = t.elementCount
        }
    }

    /// Copies an F32 tensor into `into`, which must hold exactly its `count` elements.
    public func floats(_ name: String, into: UnsafeMutablePointer<Float>, count: Int) throws {
        let t = try checked(name, .f32)
        guard count == t.elementCount else {
            throw error("tensor '\(name)': has \(t.elementCount) elements (shape \(formatShape(t.shape))), destination holds \(count)")
        }
        copy(t, to: UnsafeMutableRawPointer(into))
    }

    /// The elements of an I64 tensor, row-major.
    public func int64s(_ name: String) throws -> [Int64] {
        let t = try checked(name, .i64)
        return [Int64](unsafeUninitializedCapacity: t.elementCount) { buf, count in
            copy(t, to: UnsafeMutableRawPointer(buf.baseAddress))
            count = t.elementCount
        }
    }

    /// Copies an I64 tensor into `into`, which must hold exactly its `count` elements.
    public func int64s(_ name: String, into: UnsafeMutablePointer<Int64>, count: Int) throws {
        let t = try checked(name, .i64)
        guard count == t.elementCount else {
            throw error("tensor '\(name)': has \(t.elementCount) elements (shape \(formatShape(t.shape))), destination holds \(count)")
        }
        copy(t, to: UnsafeMutableRawPointer(into))
    }

    /// Calls `body` with the tensor's raw little-endian bytes (valid only during the call).
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let t = try info(name)
        return try bytes.withUnsafeBytes { all in
            try body(UnsafeRawBufferPointer(rebasing: all[(dataStart + t.begin)..<(dataStart + t.end)]))
        }
    }

    // MARK: - Private

    private func error(_ message: String) -> SafeTensorsError { SafeTensorsError(path: path, message: message) }

    private func checked(_ name: String, _ dtype: SafeTensorsDType) throws -> SafeTensorInfo {
        let t = try info(name)
        guard t.dtype == dtype else {
            throw error("tensor '\(name)' has dtype \(t.dtype.rawValue), requested \(dtype.rawValue)")
        }
        return t
    }

    /// memcpy of the tensor's bytes (validated in init: in range, length == elements * size).
    private func copy(_ t: SafeTensorInfo, to dst: UnsafeMutableRawPointer?) {
        guard t.byteCount > 0, let dst else { return }
        bytes.withUnsafeBytes { all in
            _ = memcpy(dst, all.baseAddress! + dataStart + t.begin, t.byteCount)
        }
    }
}

// MARK: - Header validation

private func parseMetadata(_ value: JSONValue, fail: (String) -> SafeTensorsError) throws -> [String: String] {
    switch value {
    case .null:
        return [:]
    case .object(let members):
        var out: [String: String] = [:]
        for (key, v) in members {
            guard case .string(let s) = v else {
                throw fail("__metadata__ value for key '\(key)' is \(v.kindName), expected a string")
            }
            guard out.updateValue(s, forKey: key) == nil else { throw fail("__metadata__: duplicate key '\(key)'") }
        }
        return out
    default:
        throw fail("__metadata__ is \(value.kindName), expected an object of strings")
    }
}

private func parseEntry(name: String, _ value: JSONValue, dataSize: Int,
                        fail: (String) -> SafeTensorsError) throws -> SafeTensorInfo {
    func bad(_ m: String) -> SafeTensorsError { fail("tensor '\(name)': \(m)") }
    guard case .object(let members) = value else {
        throw bad("entry is \(value.kindName), expected an object with dtype, shape and data_offsets")
    }
    var fields: [String: JSONValue] = [:]
    for (k, v) in members {
        guard fields.updateValue(v, forKey: k) == nil else { throw bad("duplicate field '\(k)'") }
    }

    guard let dtypeValue = fields["dtype"] else { throw bad("missing field 'dtype'") }
    guard case .string(let dtypeName) = dtypeValue else { throw bad("dtype is \(dtypeValue.kindName), expected a string") }
    guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
        throw bad("unknown dtype '\(dtypeName)' (supported: \(SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")))")
    }

    guard let shapeValue = fields["shape"] else { throw bad("missing field 'shape'") }
    guard case .array(let dims) = shapeValue else {
        throw bad("shape \(shapeValue.brief) is not a list of non-negative integers")
    }
    var shape: [Int] = []
    shape.reserveCapacity(dims.count)
    for d in dims {
        guard let v = d.nonNegativeInt else { throw bad("shape \(shapeValue.brief) is not a list of non-negative integers") }
        shape.append(v)
    }

    guard let offsetsValue = fields["data_offsets"] else { throw bad("missing field 'data_offsets'") }
    guard case .array(let offs) = offsetsValue, offs.count == 2,
          let begin = offs[0].nonNegativeInt, let end = offs[1].nonNegativeInt else {
        throw bad("data_offsets \(offsetsValue.brief) is not a list of two non-negative integers [begin, end]")
    }
    guard begin <= end else { throw bad("data_offsets [\(begin), \(end)] has begin > end") }
    guard end <= dataSize else {
        throw bad("data_offsets [\(begin), \(end)] outside the data section of \(dataSize) bytes (file truncated?)")
    }

    var expected = dtype.size
    for d in shape {
        let (p, o) = expected.multipliedReportingOverflow(by: d)
        guard !o else { throw bad("shape \(formatShape(shape)) is too large") }
        expected = p
    }
    guard end - begin == expected else {
        throw bad("data_offsets [\(begin), \(end)] hold \(end - begin) bytes, but \(dtype.rawValue) shape \(formatShape(shape)) needs \(expected)")
    }
    return SafeTensorInfo(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
}

/// Index of the first byte where `bytes` stops being valid UTF-8, or nil if it is all valid.
private func firstInvalidUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
    // Fast path: pure ASCII, the usual header.
    var i = 0
    while i < bytes.count, bytes[i] < 0x80 { i += 1 }
    if i == bytes.count { return nil }
    var it = UnsafeBufferPointer(rebasing: bytes[i...]).makeIterator()
    var decoder = UTF8()
    var consumed = i
    while true {
        switch decoder.decode(&it) {
        case .scalarValue(let s): consumed += UTF8.width(s)
        case .emptyInput: return nil
        case .error: return consumed
        }
    }
}

/// Reads a whole file with POSIX calls, mapping failures to `SafeTensorsError`.
private func readWholeFile(_ path: String) throws -> [UInt8] {
    func fail(_ what: String, _ code: Int32 = errno) -> SafeTensorsError {
        SafeTensorsError(path: path, message: "\(what): \(errnoString(code))")
    }
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw fail("cannot open") }
    defer { _ = close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw fail("cannot stat") }
    guard (st.st_mode & S_IFMT) == S_IFREG else {
        throw SafeTensorsError(path: path, message: "not a regular file")
    }
    let size = Int(st.st_size)
    var readError: Int32 = 0
    let bytes = [UInt8](unsafeUninitializedCapacity: size) { buf, count in
        var done = 0
        while done < size {
            let n = read(fd, buf.baseAddress! + done, size - done)
            if n < 0 {
                if errno == EINTR { continue }
                readError = errno
                break
            }
            if n == 0 { break }  // file shrank while reading
            done += n
        }
        count = done
    }
    if readError != 0 { throw fail("read failed", readError) }
    guard bytes.count == size else {
        throw SafeTensorsError(path: path, message: "file changed size while reading (\(bytes.count) of \(size) bytes)")
    }
    return bytes
}
