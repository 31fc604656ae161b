import XCTest
import MoCoData

final class IDXReaderTests: XCTestCase {
    /// 3 images of 2x3 and their labels, written raw and gzip-compressed.
    let imageData: [UInt8] = (0..<18).map { UInt8($0 * 13 % 256) }
    let labelData: [UInt8] = [7, 0, 9]

    func writePair(_ dir: String, gzip: Bool, prefix: String = "train") throws {
        let img = idxBytes(dims: [3, 2, 3], data: imageData)
        let lab = idxBytes(dims: [3], data: labelData)
        if gzip {
            try writeGzip("\(dir)/\(prefix)-images-idx3-ubyte.gz", img)
            try writeGzip("\(dir)/\(prefix)-labels-idx1-ubyte.gz", lab)
        } else {
            try writeFile("\(dir)/\(prefix)-images-idx3-ubyte", img)
            try writeFile("\(dir)/\(prefix)-labels-idx1-ubyte", lab)
        }
    }

    func checkValues(_ ds: Dataset, mean: Float, std: Float) {
        XCTAssertEqual(ds.count, 3)
        XCTAssertEqual(ds.channels, 1)
        XCTAssertEqual(ds.height, 2)
        XCTAssertEqual(ds.width, 3)
        XCTAssertEqual(ds.pixels, imageData)
        XCTAssertEqual(ds.labels, [7, 0, 9])
        XCTAssertEqual(ds.mean, [mean])
        XCTAssertEqual(ds.std, [std])
    }

    func testRawFilesThroughLoad() throws {
        let dir = try makeTempDir(self)
        try writePair(dir, gzip: false)
        checkValues(try Dataset.load(.fashionMNIST, split: .train, directory: dir), mean: 0.2860, std: 0.3530)
    }

    func testGzipFilesThroughLoad() throws {
        let dir = try makeTempDir(self)
        try writePair(dir, gzip: true, prefix: "t10k")
        checkValues(try Dataset.load(.mnist, split: .test, directory: dir), mean: 0.1307, std: 0.3081)
    }

    func testBadMagic() throws {
        let dir = try makeTempDir(self)
        var bytes = idxBytes(dims: [3, 2, 3], data: imageData)
        bytes[2] = 0x09
        try writeFile("\(dir)/img", bytes)
        assertDataError(.corrupt, contains: ["\(dir)/img", "bad magic", "expected magic 0x00000803", "got 0x00000903"]) {
            _ = try IDX.read(path: "\(dir)/img", dimensions: 3)
        }
    }

    func testWrongDimensionCount() throws {
        let dir = try makeTempDir(self)
        try writeFile("\(dir)/img", idxBytes(dims: [18], data: imageData))
        assertDataError(.corrupt, contains: ["wrong dimension count", "expected 3, got 1"]) {
            _ = try IDX.read(path: "\(dir)/img", dimensions: 3)
        }
    }

    func testCountMismatch() throws {
        let dir = try makeTempDir(self)
        try writeFile("\(dir)/train-images-idx3-ubyte", idxBytes(dims: [3, 2, 3], data: imageData))
        try writeGzip("\(dir)/train-labels-idx1-ubyte.gz", idxBytes(dims: [2], data: [1, 2]))
        assertDataError(.corrupt, contains: ["image/label count mismatch", "3 images", "2 labels"]) {
            _ = try Dataset.load(.fashionMNIST, split: .train, directory: dir)
        }
    }

    func testTruncatedRawFileNamesByteCounts() throws {
        let dir = try makeTempDir(self)
        let full = idxBytes(dims: [3, 2, 3], data: imageData)   // 16 + 18 = 34 bytes
        try writeFile("\(dir)/img", Array(full[0..<30]))
        assertDataError(.corrupt, contains: ["\(dir)/img", "truncated at byte 30 of expected 34"]) {
            _ = try IDX.read(path: "\(dir)/img", dimensions: 3)
        }
        try writeFile("\(dir)/hdr", Array(full[0..<10]))
        assertDataError(.corrupt, contains: ["truncated at byte 10 of expected header of 16 bytes"]) {
            _ = try IDX.read(path: "\(dir)/hdr", dimensions: 3)
        }
    }

    func testTruncatedDecompressedContent() throws {
        let dir = try makeTempDir(self)
        let full = idxBytes(dims: [3, 2, 3], data: imageData)
        try writeGzip("\(dir)/img.gz", Array(full[0..<25]))
        assertDataError(.corrupt, contains: ["truncated at byte 25 of expected 34"]) {
            _ = try IDX.read(path: "\(dir)/img.gz", dimensions: 3)
        }
    }

    func testTruncatedGzipStream() throws {
        let dir = try makeTempDir(self)
        let big = idxBytes(dims: [100, 28, 28], data: (0..<78400).map { UInt8(($0 * 7919) % 251) })
        try writeGzip("\(dir)/img.gz", big)
        let gz = try XCTUnwrap(FileManager.default.contents(atPath: "\(dir)/img.gz"))
        try writeFile("\(dir)/cut.gz", Array([UInt8](gz)[0..<(gz.count / 2)]))
        assertDataError(.corrupt, contains: ["\(dir)/cut.gz", "gzip"]) {
            _ = try IDX.read(path: "\(dir)/cut.gz", dimensions: 3)
        }
        XCTAssertEqual(try IDX.read(path: "\(dir)/img.gz", dimensions: 3).dims, [100, 28, 28])
    }

    func testTrailingBytesRejected() throws {
        let dir = try makeTempDir(self)
        try writeFile("\(dir)/lab", idxBytes(dims: [3], data: labelData + [0, 0]))
        assertDataError(.corrupt, contains: ["2 bytes of trailing data"]) {
            _ = try IDX.read(path: "\(dir)/lab", dimensions: 1)
        }
    }

    func testLabelOutOfRange() throws {
        let dir = try makeTempDir(self)
        try writeFile("\(dir)/train-images-idx3-ubyte", idxBytes(dims: [3, 2, 3], data: imageData))
        try writeFile("\(dir)/train-labels-idx1-ubyte", idxBytes(dims: [3], data: [1, 12, 3]))
        assertDataError(.corrupt, contains: ["label 12 at index 1"]) {
            _ = try Dataset.load(.fashionMNIST, split: .train, directory: dir)
        }
    }

    func testMissingFilesSayHowToGetThem() throws {
        let dir = try makeTempDir(self)
        assertDataError(.missingFile, contains: ["\(dir)/train-images-idx3-ubyte.gz", "apt-get install dataset-fashion-mnist"]) {
            _ = try Dataset.load(.fashionMNIST, split: .train, directory: dir)
        }
        assertDataError(.missingFile, contains: ["--data-dir"]) {
            _ = try Dataset.load(.mnist, split: .train, directory: nil)
        }
    }
}
