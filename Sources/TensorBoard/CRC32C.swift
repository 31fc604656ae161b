/// CRC-32C (Castagnoli), the checksum of TFRecord files: the reflected CRC with polynomial
/// 0x1EDC6F41 (0x82F63B78 bit-reversed), initial value and final XOR 0xFFFFFFFF, as in iSCSI
/// (RFC 3720, appendix B.4, which also gives test vectors). zlib's `crc32` is the other
/// polynomial (0x04C11DB7, gzip and PNG), so it cannot stand in.
///
/// Table-driven, one byte per step: the records of a scalar log are a few hundred bytes.
public enum CRC32C {
    /// The reflected polynomial.
    static let polynomial: UInt32 = 0x82F6_3B78

    /// table[b]: the CRC register after shifting byte b through it from zero.
    static let table: [UInt32] = (0..<256).map { (b: Int) -> UInt32 in
        var r = UInt32(b)
        for _ in 0..<8 { r = r & 1 == 1 ? (r >> 1) ^ polynomial : r >> 1 }
        return r
    }

    /// The CRC-32C of `bytes`, continuing from `crc` (the value of the bytes before; 0 to start).
    public static func checksum<C: Collection>(_ bytes: C, continuing crc: UInt32 = 0) -> UInt32 where C.Element == UInt8 {
        var r = ~crc
        table.withUnsafeBufferPointer { t in
            for b in bytes { r = t[Int((r ^ UInt32(b)) & 0xFF)] ^ (r >> 8) }
        }
        return ~r
    }

    /// The masked CRC that TFRecord stores (TensorFlow's `crc32c::Mask`): rotated right by 15
    /// bits plus 0xA282EAD8, so that a CRC of data holding CRCs is not itself trivial.
    public static func masked(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    /// Inverse of `masked`.
    public static func unmasked(_ m: UInt32) -> UInt32 {
        let r = m &- 0xA282_EAD8
        return (r << 15) | (r >> 17)
    }
}
