import XCTest
@testable import TensorBoard

/// CRC-32C against published vectors and TFRecord's masking.
final class CRC32CTests: XCTestCase {
    /// The check value of the CRC catalogues ("123456789") and the four 32-byte vectors of
    /// RFC 3720, appendix B.4 (iSCSI).
    func testKnownVectors() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8($0) }), 0x46DD_794E)
        XCTAssertEqual(CRC32C.checksum((0..<32).reversed().map { UInt8($0) }), 0x113F_DB5C)
        XCTAssertEqual(CRC32C.checksum([UInt8]()), 0)
    }

    /// A checksum continued over a split input equals the checksum of the whole.
    func testContinuation() {
        let bytes = Array("The quick brown fox jumps over the lazy dog".utf8)
        for cut in [0, 1, 17, bytes.count] {
            XCTAssertEqual(CRC32C.checksum(bytes[cut...], continuing: CRC32C.checksum(bytes[..<cut])), CRC32C.checksum(bytes))
        }
    }

    /// Masking is TensorFlow's rotation plus constant, and `unmasked` inverts it.
    func testMask() {
        XCTAssertEqual(CRC32C.masked(0), 0xA282_EAD8)
        XCTAssertEqual(CRC32C.masked(0x8000), 0xA282_EAD9)   // bit 15 rotates to bit 0
        for crc: UInt32 in [0, 1, 0xE306_9283, 0xFFFF_FFFF, 0x1234_5678] {
            XCTAssertEqual(CRC32C.unmasked(CRC32C.masked(crc)), crc)
        }
    }
}
