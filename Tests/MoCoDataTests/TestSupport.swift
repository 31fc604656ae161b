import CZlib
import Foundation
import XCTest
import MoCoData

/// A fresh temporary directory, removed when the test ends.
func makeTempDir(_ test: XCTestCase) throws -> String {
    let dir = NSTemporaryDirectory() + "moco-data-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
    return dir
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// Writes `bytes` gzip-compressed with zlib's gzwrite.
func writeGzip(_ path: String, _ bytes: [UInt8]) throws {
    guard let f = gzopen(path, "wb") else { throw DataError(.invalidArgument, "gzopen \(path)") }
    let written = bytes.withUnsafeBytes { gzwrite(f, $0.baseAddress, UInt32($0.count)) }
    XCTAssertEqual(Int(written), bytes.count)
    XCTAssertEqual(gzclose(f), Z_OK)
}

func be32(_ v: Int) -> [UInt8] {
    [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
}

/// IDX unsigned-byte file bytes: header 00 00 08 D, D sizes, data.
func idxBytes(dims: [Int], data: [UInt8]) -> [UInt8] {
    [0, 0, 0x08, UInt8(dims.count)] + dims.flatMap(be32) + data
}

/// Asserts `body` throws a DataError of `kind` whose description contains every fragment.
func assertDataError(_ kind: DataError.Kind, contains fragments: [String], file: StaticString = #filePath,
                     line: UInt = #line, _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected a DataError", file: file, line: line)
    } catch let e as DataError {
        XCTAssertEqual(e.kind, kind, "\(e)", file: file, line: line)
        for f in fragments {
            XCTAssertTrue(e.description.contains(f), "'\(e.description)' lacks '\(f)'", file: file, line: line)
        }
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
    }
}

/// Reads `count` floats of a buffer into an array (test-side only).
func floats(_ p: UnsafeMutablePointer<Float>, _ count: Int) -> [Float] {
    Array(UnsafeBufferPointer(start: p, count: count))
}

/// A small dataset with given pixels, mean 0 and std 1/255 so normalised values are the bytes.
func byteDataset(channels: Int, height: Int, width: Int, images: [[UInt8]]) -> Dataset {
    Dataset(name: "bytes", channels: channels, height: height, width: width, pixels: images.flatMap { $0 },
            labels: images.indices.map { Int32($0 % 2) }, numClasses: 2,
            mean: [Float](repeating: 0, count: channels), std: [Float](repeating: 1.0 / 255.0, count: channels))
}
