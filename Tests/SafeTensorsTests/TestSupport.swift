import Foundation
import XCTest
@testable import SafeTensors

/// A fresh temporary directory, removed at the end of the test.
func makeTempDir(_ test: XCTestCase) throws -> String {
    let dir = FileManager.default.temporaryDirectory
        .appendingPathComponent("safetensors-tests-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
    return dir
}

/// A file image with the given header text (used verbatim, unpadded) and data section.
func rawFile(header: String, data: [UInt8] = [], statedLength: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    var n = statedLength ?? UInt64(h.count)
    var out: [UInt8] = []
    for _ in 0..<8 { out.append(UInt8(truncatingIfNeeded: n)); n >>= 8 }
    return out + h + data
}

/// Asserts that `body` throws a `SafeTensorsError` whose message contains every fragment.
func assertSafeTensorsError<T>(_ fragments: [String], file: StaticString = #filePath, line: UInt = #line,
                               _ body: () throws -> T) {
    do {
        _ = try body()
        XCTFail("expected an error containing \(fragments)", file: file, line: line)
    } catch let e as SafeTensorsError {
        for f in fragments where !e.message.contains(f) {
            XCTFail("error message \"\(e.message)\" does not contain \"\(f)\"", file: file, line: line)
        }
    } catch {
        XCTFail("unexpected error type: \(error)", file: file, line: line)
    }
}

/// Parses an in-memory image, asserting the error message.
func assertRejects(_ bytes: [UInt8], _ fragments: String..., maxHeaderBytes: Int = SafeTensorsFile.defaultMaxHeaderBytes,
                   file: StaticString = #filePath, line: UInt = #line) {
    assertSafeTensorsError(fragments, file: file, line: line) {
        try SafeTensorsFile(bytes: bytes, path: "test.safetensors", maxHeaderBytes: maxHeaderBytes)
    }
}

/// Little-endian bytes of Float values.
func leBytes(_ xs: [Float]) -> [UInt8] { xs.withUnsafeBytes { Array($0) } }
