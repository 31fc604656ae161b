import XCTest
import MoCoData

final class CIFARReaderTests: XCTestCase {
    /// Record r: label r % 10, channel c pixel k = (r + 3c + k) mod 256.
    func records(_ n: Int) -> [UInt8] {
        var out = [UInt8]()
        for r in 0..<n {
            out.append(UInt8(r % 10))
            for c in 0..<3 { for k in 0..<1024 { out.append(UInt8((r + 3 * c + k) % 256)) } }
        }
        return out
    }

    func testTinyBatchValues() throws {
        let dir = try makeTempDir(self)
        try writeFile("\(dir)/b.bin", records(4))
        let (pixels, labels) = try CIFAR10.readBatch(path: "\(dir)/b.bin", expectedRecords: nil)
        XCTAssertEqual(labels, [0, 1, 2, 3])
        XCTAssertEqual(pixels.count, 4 * 3072)
        // Image 2, green plane (c = 1), pixel (row 1, col 5) = k 37.
        XCTAssertEqual(pixels[2 * 3072 + 1 * 1024 + 37], UInt8((2 + 3 + 37) % 256))
        XCTAssertEqual(pixels[3 * 3072 + 2 * 1024 + 1023], UInt8((3 + 6 + 1023) % 256))
    }

    func testTruncatedBatch() throws {
        let dir = try makeTempDir(self)
        try writeFile("\(dir)/b.bin", Array(records(3)[0..<(2 * 3073 + 100)]))
        assertDataError(.corrupt, contains: ["\(dir)/b.bin", "truncated at byte 6246 of expected 9219"]) {
            _ = try CIFAR10.readBatch(path: "\(dir)/b.bin", expectedRecords: nil)
        }
        // A whole number of records, but fewer than a real batch file holds.
        try writeFile("\(dir)/c.bin", records(2))
        assertDataError(.corrupt, contains: ["truncated at byte 6146 of expected 30730000"]) {
            _ = try CIFAR10.readBatch(path: "\(dir)/c.bin")
        }
    }

    func testBadLabel() throws {
        let dir = try makeTempDir(self)
        var bytes = records(2)
        bytes[3073] = 10
        try writeFile("\(dir)/b.bin", bytes)
        assertDataError(.corrupt, contains: ["label 10 of record 1"]) {
            _ = try CIFAR10.readBatch(path: "\(dir)/b.bin", expectedRecords: nil)
        }
    }

    func testMissingCIFARMentionsBinaryVersion() throws {
        let dir = try makeTempDir(self)
        try FileManager.default.createDirectory(atPath: "\(dir)/cifar-10-batches-bin", withIntermediateDirectories: true)
        assertDataError(.missingFile, contains: ["cifar-10-batches-bin/test_batch.bin", "cifar-10-binary.tar.gz", "--data-dir"]) {
            _ = try Dataset.load(.cifar10, split: .test, directory: dir)
        }
        assertDataError(.missingFile, contains: ["cifar-10-binary.tar.gz"]) {
            _ = try Dataset.load(.cifar10, split: .test, directory: nil)
        }
    }
}
