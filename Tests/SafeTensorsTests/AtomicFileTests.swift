import Foundation
import XCTest
@testable import SafeTensors

final class AtomicFileTests: XCTestCase {
    func testWriteCreatesAndReplacesWithoutLeavingTempFiles() throws {
        let dir = try makeTempDir(self)
        let path = dir + "/ckpt.safetensors"
        try AtomicFile.write([1, 2, 3], to: path)
        XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: path))), [1, 2, 3])
        try AtomicFile.write([4, 5], to: path)
        XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: path))), [4, 5])
        try AtomicFile.write([], to: path)
        XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: path))), [])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["ckpt.safetensors"])
    }

    func testWriterWriteLeavesNoTempFiles() throws {
        let dir = try makeTempDir(self)
        var w = SafeTensorsWriter()
        w.add("x", shape: [3], floats: [1, 2, 3])
        try w.write(to: dir + "/a.safetensors")
        try w.write(to: dir + "/a.safetensors")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["a.safetensors"])
        XCTAssertEqual(try SafeTensorsFile(path: dir + "/a.safetensors").floats("x"), [1, 2, 3])
    }

    func testRelativePathInCurrentDirectory() throws {
        let dir = try makeTempDir(self)
        let old = FileManager.default.currentDirectoryPath
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(dir))
        defer { _ = FileManager.default.changeCurrentDirectoryPath(old) }
        try AtomicFile.write([7], to: "rel.bin")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["rel.bin"])
    }

    func testFailureInMissingDirectoryCreatesNothing() throws {
        let dir = try makeTempDir(self)
        let path = dir + "/no/such/dir/ckpt.safetensors"
        assertSafeTensorsError(["cannot create temporary file", "No such file"]) { try AtomicFile.write([1], to: path) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/no"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }

    func testFailedRenameKeepsOldFileAndRemovesTemp() throws {
        // The destination is a non-empty directory: the temp file is written, rename fails.
        let dir = try makeTempDir(self)
        let target = dir + "/target"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false)
        try Data([9]).write(to: URL(fileURLWithPath: target + "/keep"))
        assertSafeTensorsError(["rename"]) { try AtomicFile.write([1, 2, 3], to: target) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["target"])
        XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: target + "/keep"))), [9])
    }

    func testFailedWriteKeepsOldFile() throws {
        let dir = try makeTempDir(self)
        let path = dir + "/ckpt.safetensors"
        try AtomicFile.write([1, 2, 3], to: path)
        // The temp path is occupied by a directory, so creating the temp file fails.
        let tmp = "\(path).tmp.\(getpid())"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: false)
        var w = SafeTensorsWriter()
        w.add("x", shape: [1], floats: [1])
        assertSafeTensorsError(["cannot create temporary file"]) { try w.write(to: path) }
        XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: path))), [1, 2, 3])
    }

    func testDirectoryName() {
        XCTAssertEqual(AtomicFile.directoryName(of: "a.bin"), ".")
        XCTAssertEqual(AtomicFile.directoryName(of: "/a.bin"), "/")
        XCTAssertEqual(AtomicFile.directoryName(of: "/x/y/a.bin"), "/x/y")
        XCTAssertEqual(AtomicFile.directoryName(of: "x//a.bin"), "x")
        XCTAssertEqual(AtomicFile.directoryName(of: "x/a/"), "x")
    }
}
