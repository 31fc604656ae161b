import Foundation
import XCTest
@testable import SafeTensors

final class RoundTripTests: XCTestCase {
    func testF32AndI64RoundTripThroughDisk() throws {
        let dir = try makeTempDir(self)
        let path = dir + "/model.safetensors"
        let w4 = (0..<24).map { Float($0) * 0.5 - 3 }
        var w = SafeTensorsWriter()
        w.add("conv.weight", shape: [2, 3, 2, 2], floats: w4)
        w.add("perm", shape: [5], int64s: [4, -1, Int64.max, Int64.min, 0])
        w.add("loss", shape: [], floats: [Float.pi])
        w.add("step", shape: [], int64s: [42])
        w.add("special", shape: [4], floats: [.infinity, -.infinity, -0.0, .leastNonzeroMagnitude])
        try w.write(to: path)

        let f = try SafeTensorsFile(path: path)
        XCTAssertEqual(f.path, path)
        XCTAssertEqual(f.metadata, [:])
        XCTAssertEqual(f.tensors.count, 5)
        XCTAssertEqual(try f.floats("conv.weight"), w4)
        XCTAssertEqual(try f.shape("conv.weight"), [2, 3, 2, 2])
        XCTAssertEqual(try f.int64s("perm"), [4, -1, Int64.max, Int64.min, 0])
        XCTAssertEqual(try f.floats("loss"), [Float.pi])
        XCTAssertEqual(try f.shape("loss"), [])
        XCTAssertEqual(try f.int64s("step"), [42])
        XCTAssertEqual(try f.shape("step"), [])
        let special = try f.floats("special")
        XCTAssertEqual(special.map(\.bitPattern), [Float.infinity, -.infinity, -0.0, .leastNonzeroMagnitude].map(\.bitPattern))
        XCTAssertEqual(f.tensors["perm"]?.dtype, .i64)
        XCTAssertEqual(f.tensors["loss"]?.dtype, .f32)
        XCTAssertNoThrow(try f.expect("conv.weight", dtype: .f32, shape: [2, 3, 2, 2]))
    }

    func testNaNPayloadIsPreservedBitExactly() throws {
        let nan = Float(bitPattern: 0x7FC0_1234)
        var w = SafeTensorsWriter()
        w.add("x", shape: [1], floats: [nan])
        let f = try SafeTensorsFile(bytes: w.serialized())
        XCTAssertEqual(try f.floats("x").map(\.bitPattern), [0x7FC0_1234])
    }

    func testMetadataRoundTrip() throws {
        var w = SafeTensorsWriter()
        w.metadata = ["K": "64", "note": "quote \" backslash \\ newline \n tab \t ctrl \u{01} unicode é ✓ 🚀", "": "empty key"]
        w.add("x", shape: [1], floats: [1])
        let f = try SafeTensorsFile(bytes: w.serialized())
        XCTAssertEqual(f.metadata, w.metadata)
    }

    func testEmptyMetadataIsOmittedAndReadsAsEmpty() throws {
        var w = SafeTensorsWriter()
        w.add("x", shape: [1], floats: [1])
        let bytes = w.serialized()
        XCTAssertFalse(String(decoding: bytes, as: UTF8.self).contains("__metadata__"))
        XCTAssertEqual(try SafeTensorsFile(bytes: bytes).metadata, [:])
        // An explicit empty map (as Python writes with metadata={}) reads the same.
        let f = try SafeTensorsFile(bytes: rawFile(header: #"{"__metadata__":{}}"#))
        XCTAssertEqual(f.metadata, [:])
        XCTAssertEqual(f.names, [])
    }

    func testEmptyFileWithNoTensors() throws {
        let bytes = SafeTensorsWriter().serialized()
        XCTAssertEqual(bytes, rawFile(header: "{}      "))
        let f = try SafeTensorsFile(bytes: bytes)
        XCTAssertTrue(f.tensors.isEmpty)
    }

    func testNamesAreSortedAndPrefixed() throws {
        var w = SafeTensorsWriter()
        for name in ["encoder_q.fc.bias", "b", "encoder_k.conv1.weight", "a.z", "encoder_q.conv1.weight", "A"] {
            w.add(name, shape: [1], floats: [0])
        }
        XCTAssertEqual(w.names, ["A", "a.z", "b", "encoder_k.conv1.weight", "encoder_q.conv1.weight", "encoder_q.fc.bias"])
        let f = try SafeTensorsFile(bytes: w.serialized())
        XCTAssertEqual(f.names, w.names)
        XCTAssertEqual(f.names(withPrefix: "encoder_q."), ["conv1.weight", "fc.bias"])
        XCTAssertEqual(f.names(withPrefix: "nothing."), [])
        XCTAssertTrue(f.has("b"))
        XCTAssertFalse(f.has("c"))
        // Data are laid out contiguously in name order.
        XCTAssertEqual(f.names.map { f.tensors[$0]!.begin }, [0, 4, 8, 12, 16, 20])
    }

    func testZeroSizedTensors() throws {
        var w = SafeTensorsWriter()
        w.add("empty", shape: [0, 3], floats: [])
        w.add("also_empty", shape: [0], int64s: [])
        w.add("x", shape: [2], floats: [1, 2])
        let f = try SafeTensorsFile(bytes: w.serialized())
        XCTAssertEqual(try f.floats("empty"), [])
        XCTAssertEqual(try f.shape("empty"), [0, 3])
        XCTAssertEqual(try f.int64s("also_empty"), [])
        XCTAssertEqual(try f.floats("x"), [1, 2])
    }

    func testFloatsIntoPointerChecksCount() throws {
        var w = SafeTensorsWriter()
        let values: [Float] = (0..<1000).map { Float($0) }
        w.add("big", shape: [10, 100], floats: values)
        let f = try SafeTensorsFile(bytes: w.serialized(), path: "p")
        var dst = [Float](repeating: -1, count: 1000)
        try dst.withUnsafeMutableBufferPointer { try f.floats("big", into: $0.baseAddress!, count: $0.count) }
        XCTAssertEqual(dst, values)
        assertSafeTensorsError(["tensor 'big'", "1000 elements", "999"]) {
            try dst.withUnsafeMutableBufferPointer { try f.floats("big", into: $0.baseAddress!, count: 999) }
        }
    }

    func testUnsafeBufferAddMatchesArrayAdd() throws {
        let values: [Float] = [1, 2, 3, 4, 5, 6]
        var a = SafeTensorsWriter()
        a.add("t", shape: [2, 3], floats: values)
        var b = SafeTensorsWriter()
        values.withUnsafeBufferPointer { b.add("t", shape: [2, 3], floats: $0) }
        XCTAssertEqual(a.serialized(), b.serialized())
    }

    func testAccessorErrorsNameTheTensor() throws {
        var w = SafeTensorsWriter()
        w.add("f", shape: [2], floats: [1, 2])
        w.add("i", shape: [1], int64s: [1])
        let f = try SafeTensorsFile(bytes: w.serialized(), path: "ckpt.safetensors")
        assertSafeTensorsError(["tensor 'i'", "I64", "F32"]) { try f.floats("i") }
        assertSafeTensorsError(["tensor 'f'", "F32", "I64"]) { try f.int64s("f") }
        assertSafeTensorsError(["'missing'"]) { try f.floats("missing") }
        assertSafeTensorsError(["'missing'"]) { try f.shape("missing") }
        do {
            _ = try f.floats("missing")
        } catch let e as SafeTensorsError {
            XCTAssertEqual(e.path, "ckpt.safetensors")
            XCTAssertTrue(e.description.hasPrefix("ckpt.safetensors: "))
        }
    }

    func testExpectReportsShapeAndDtypeMismatch() throws {
        var w = SafeTensorsWriter()
        w.add("layer1.0.conv1.weight", shape: [16, 3, 3, 3], floats: [Float](repeating: 0, count: 432))
        let f = try SafeTensorsFile(bytes: w.serialized())
        XCTAssertNoThrow(try f.expect("layer1.0.conv1.weight", dtype: .f32, shape: [16, 3, 3, 3]))
        assertSafeTensorsError(["tensor 'layer1.0.conv1.weight': shape [16, 3, 3, 3] in file, model expects [16, 16, 3, 3]"]) {
            try f.expect("layer1.0.conv1.weight", dtype: .f32, shape: [16, 16, 3, 3])
        }
        assertSafeTensorsError(["tensor 'layer1.0.conv1.weight': dtype F32 in file, model expects I64"]) {
            try f.expect("layer1.0.conv1.weight", dtype: .i64, shape: [16, 3, 3, 3])
        }
        assertSafeTensorsError(["'layer9.weight'"]) { try f.expect("layer9.weight", dtype: .f32, shape: [1]) }
    }

    func testWriterRejectsInvalidAdditionsOnWrite() throws {
        let dir = try makeTempDir(self)
        var w = SafeTensorsWriter()
        w.add("x", shape: [2, 2], floats: [1, 2, 3])
        assertSafeTensorsError(["tensor 'x'", "[2, 2]", "4 elements", "3"]) { try w.write(to: dir + "/a.safetensors") }

        var d = SafeTensorsWriter()
        d.add("x", shape: [1], floats: [1])
        d.add("x", shape: [1], floats: [2])
        assertSafeTensorsError(["tensor 'x'", "twice"]) { try d.write(to: dir + "/b.safetensors") }

        var m = SafeTensorsWriter()
        m.add("__metadata__", shape: [1], floats: [1])
        assertSafeTensorsError(["reserved"]) { try m.write(to: dir + "/c.safetensors") }

        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }
}
