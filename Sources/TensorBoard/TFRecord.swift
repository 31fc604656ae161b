/// TFRecord framing, the container of TensorBoard's event files (TensorFlow's
/// `io::RecordWriter`): each record is
///
///     uint64 length            little-endian, of data
///     uint32 masked_crc(length bytes)
///     data[length]
///     uint32 masked_crc(data)
///
/// with `CRC32C.masked` over CRC-32C.
public enum TFRecord {
    /// The framed bytes of one record.
    public static func frame(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 16)
        let length = littleEndian(UInt64(data.count))
        out += length
        out += littleEndian(CRC32C.masked(CRC32C.checksum(length)))
        out += data
        out += littleEndian(CRC32C.masked(CRC32C.checksum(data)))
        return out
    }

    /// What is wrong with a file's framing.
    public struct FormatError: Error, CustomStringConvertible, Sendable {
        /// Byte offset of the record whose framing is wrong.
        public let offset: Int
        public let problem: String
        public var description: String { "TFRecord at byte \(offset): \(problem)" }
    }

    /// The records of `bytes` in order, each checked against both CRCs.
    /// - Returns: the records, and the byte length of the well-formed prefix they fill (less
    ///   than `bytes.count` when the file ends in an incomplete record, as a writer that died
    ///   mid-record leaves it; `throws` instead for a complete record with a wrong checksum).
    public static func records(in bytes: [UInt8]) throws -> (records: [[UInt8]], validLength: Int) {
        var out: [[UInt8]] = []
        var at = 0
        while at < bytes.count {
            guard bytes.count - at >= 12 else { break }
            let length = readLE(UInt64.self, bytes, at)
            guard CRC32C.masked(CRC32C.checksum(bytes[at..<(at + 8)])) == readLE(UInt32.self, bytes, at + 8) else {
                throw FormatError(offset: at, problem: "length checksum mismatch")
            }
            guard length <= UInt64(bytes.count - at - 16) else { break }
            let start = at + 12, end = start + Int(length)
            let data = Array(bytes[start..<end])
            guard CRC32C.masked(CRC32C.checksum(data)) == readLE(UInt32.self, bytes, end) else {
                throw FormatError(offset: at, problem: "data checksum mismatch")
            }
            out.append(data)
            at = end + 4
        }
        return (out, at)
    }

    static func littleEndian<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
        (0..<(T.bitWidth / 8)).map { UInt8(truncatingIfNeeded: v >> ($0 * 8)) }
    }

    static func readLE<T: FixedWidthInteger>(_: T.Type, _ b: [UInt8], _ at: Int) -> T {
        var v: T = 0
        for i in 0..<(T.bitWidth / 8) { v |= T(b[at + i]) << (i * 8) }
        return v
    }
}
