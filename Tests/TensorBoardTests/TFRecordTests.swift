import XCTest
@testable import TensorBoard

/// TFRecord framing: layout, checksums, a damaged record, an incomplete last record.
final class TFRecordTests: XCTestCase {
    func testFrameLayout() {
        let data = Array("hello".utf8)
        let r = TFRecord.frame(data)
        XCTAssertEqual(r.count, 8 + 4 + data.count + 4)
        XCTAssertEqual(Array(r[0..<8]), [5, 0, 0, 0, 0, 0, 0, 0], "length, uint64 little-endian")
        XCTAssertEqual(TFRecord.readLE(UInt32.self, r, 8), CRC32C.masked(CRC32C.checksum(r[0..<8])))
        XCTAssertEqual(Array(r[12..<17]), data)
        XCTAssertEqual(TFRecord.readLE(UInt32.self, r, 17), CRC32C.masked(CRC32C.checksum(data)))
    }

    func testRecordsRoundTripAndDetectDamage() throws {
        let payloads: [[UInt8]] = [[], [1, 2, 3], Array(repeating: 7, count: 300)]
        let file = payloads.flatMap(TFRecord.frame)
        let parsed = try TFRecord.records(in: file)
        XCTAssertEqual(parsed.records, payloads)
        XCTAssertEqual(parsed.validLength, file.count)

        // A flipped data byte of the second record: its data checksum no longer matches.
        var damaged = file
        damaged[TFRecord.frame([]).count + 12] ^= 0x40
        XCTAssertThrowsError(try TFRecord.records(in: damaged)) { XCTAssertTrue("\($0)".contains("data checksum"), "\($0)") }
        // A flipped length byte: the length checksum catches it before the length is used.
        var badLength = file
        badLength[TFRecord.frame([]).count] ^= 0x01
        XCTAssertThrowsError(try TFRecord.records(in: badLength)) { XCTAssertTrue("\($0)".contains("length checksum"), "\($0)") }

        // A writer that died mid-record leaves a prefix: the complete records, and where they end.
        let cut = Array(file.dropLast(5))
        let partial = try TFRecord.records(in: cut)
        XCTAssertEqual(partial.records, Array(payloads.prefix(2)))
        XCTAssertEqual(partial.validLength, file.count - TFRecord.frame(payloads[2]).count)
    }
}
