import XCTest
@testable import SafeTensors

/// Every malformed input is rejected with a `SafeTensorsError` naming the field or tensor.
final class ValidationTests: XCTestCase {
    private func valid() -> [UInt8] {
        var w = SafeTensorsWriter()
        w.add("a", shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        w.add("b", shape: [2], int64s: [7, 8])
        return w.serialized()
    }

    private func entry(_ name: String = "x", dtype: String = "\"F32\"", shape: String = "[2]", offsets: String = "[0,8]") -> String {
        #"{"\#(name)":{"dtype":\#(dtype),"shape":\#(shape),"data_offsets":\#(offsets)}}"#
    }

    func testFileShorterThanEightBytes() {
        assertRejects([], "0 bytes", "shorter than the 8-byte")
        assertRejects([1, 0, 0], "3 bytes", "shorter than the 8-byte")
    }

    func testZeroHeaderLength() {
        assertRejects(rawFile(header: "", statedLength: 0), "header length 0")
    }

    func testHeaderLengthBeyondFile() {
        let bytes = rawFile(header: "{}      ", statedLength: 1000)
        assertRejects(bytes, "header length 1000 exceeds file size \(bytes.count)")
        assertRejects(rawFile(header: "{}", statedLength: UInt64.max), "header length \(UInt64.max) exceeds the limit")
    }

    func testHeaderLengthBeyondLimit() {
        let bytes = rawFile(header: "{}      ")
        assertRejects(bytes, "header length 8 exceeds the limit of 4 bytes", maxHeaderBytes: 4)
        XCTAssertNoThrow(try SafeTensorsFile(bytes: bytes, maxHeaderBytes: 8))
        // The default bound is 16 MiB (a header's parse tree is ~30x its size; SafeTensorsFile).
        assertRejects(rawFile(header: "{}", statedLength: UInt64(16 << 20) + 1), "header length 16777217 exceeds the limit of 16777216 bytes")
    }

    func testTruncatedDataSection() {
        let full = valid()
        XCTAssertNoThrow(try SafeTensorsFile(bytes: full))
        // 24 bytes of "a" then 16 of "b"; cut 3 bytes off "b".
        assertRejects(Array(full.dropLast(3)),
                      "tensor 'b': data_offsets [24, 40] outside the data section of 37 bytes (file truncated?)")
        // Cut inside the header: the stated length no longer fits.
        assertRejects(Array(full.prefix(20)), "exceeds file size 20")
    }

    func testOffsetsOutOfRange() {
        assertRejects(rawFile(header: entry(offsets: "[8,16]"), data: leBytes([1, 2])),
                      "tensor 'x': data_offsets [8, 16] outside the data section of 8 bytes (file truncated?)")
    }

    func testOffsetsMalformed() {
        let data = leBytes([1, 2])
        assertRejects(rawFile(header: entry(offsets: "[8,0]"), data: data), "tensor 'x': data_offsets [8, 0] has begin > end")
        assertRejects(rawFile(header: entry(offsets: "[0]"), data: data), "tensor 'x': data_offsets [0]", "two non-negative integers")
        assertRejects(rawFile(header: entry(offsets: "[0,8,16]"), data: data), "tensor 'x': data_offsets", "two non-negative integers")
        assertRejects(rawFile(header: entry(offsets: "[-8,0]"), data: data), "tensor 'x': data_offsets [-8, 0]", "non-negative")
        assertRejects(rawFile(header: entry(offsets: "[0,8.0]"), data: data), "tensor 'x': data_offsets [0, 8.0]")
        assertRejects(rawFile(header: entry(offsets: "[0,8e0]"), data: data), "tensor 'x': data_offsets [0, 8e0]")
        assertRejects(rawFile(header: entry(offsets: "[0,\"8\"]"), data: data), "tensor 'x': data_offsets")
        assertRejects(rawFile(header: entry(offsets: "[0,99999999999999999999999]"), data: data), "tensor 'x': data_offsets")
        assertRejects(rawFile(header: entry(offsets: "{}"), data: data), "tensor 'x': data_offsets {}")
    }

    func testOverlappingTensors() {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        assertRejects(rawFile(header: header, data: leBytes([1, 2, 3])),
                      "tensors 'a' data_offsets [0, 8] and 'b' data_offsets [4, 12] overlap")
        let same = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        assertRejects(rawFile(header: same, data: leBytes([1])), "'a'", "'b'", "overlap")
        // Zero-sized tensors occupy no bytes and never overlap.
        let empty = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"e":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#
        XCTAssertNoThrow(try SafeTensorsFile(bytes: rawFile(header: empty, data: leBytes([1]))))
    }

    func testByteLengthDoesNotMatchShape() {
        assertRejects(rawFile(header: entry(shape: "[3]"), data: leBytes([1, 2])),
                      "tensor 'x': data_offsets [0, 8] hold 8 bytes, but F32 shape [3] needs 12")
        assertRejects(rawFile(header: entry(dtype: "\"I64\"", shape: "[2]", offsets: "[0,8]"), data: leBytes([1, 2])),
                      "tensor 'x'", "I64 shape [2] needs 16")
        assertRejects(rawFile(header: entry(shape: "[]"), data: leBytes([1, 2])), "tensor 'x'", "shape [] needs 4")
        assertRejects(rawFile(header: entry(shape: "[4294967296,4294967296]"), data: leBytes([1, 2])), "tensor 'x'", "too large")
    }

    func testUnknownDtype() {
        assertRejects(rawFile(header: entry(dtype: "\"F16\"", offsets: "[0,4]"), data: leBytes([1])),
                      "tensor 'x': unknown dtype 'F16'", "F32, I64")
        assertRejects(rawFile(header: entry(dtype: "\"f32\""), data: leBytes([1, 2])), "unknown dtype 'f32'")
        assertRejects(rawFile(header: entry(dtype: "32"), data: leBytes([1, 2])), "tensor 'x': dtype is a number")
    }

    func testBadShape() {
        let data = leBytes([1, 2])
        assertRejects(rawFile(header: entry(shape: "[-2]"), data: data), "tensor 'x': shape [-2] is not a list of non-negative integers")
        assertRejects(rawFile(header: entry(shape: "[2.0]"), data: data), "tensor 'x': shape [2.0]")
        assertRejects(rawFile(header: entry(shape: "2"), data: data), "tensor 'x': shape 2 is not a list")
        assertRejects(rawFile(header: entry(shape: "[\"2\"]"), data: data), "tensor 'x': shape")
        assertRejects(rawFile(header: entry(shape: "[null]"), data: data), "tensor 'x': shape [null]")
    }

    func testMissingFieldsAndBadEntries() {
        let data = leBytes([1, 2])
        assertRejects(rawFile(header: #"{"x":{"shape":[2],"data_offsets":[0,8]}}"#, data: data), "tensor 'x': missing field 'dtype'")
        assertRejects(rawFile(header: #"{"x":{"dtype":"F32","data_offsets":[0,8]}}"#, data: data), "tensor 'x': missing field 'shape'")
        assertRejects(rawFile(header: #"{"x":{"dtype":"F32","shape":[2]}}"#, data: data), "tensor 'x': missing field 'data_offsets'")
        assertRejects(rawFile(header: #"{"x":[1,2]}"#, data: data), "tensor 'x': entry is a list, expected an object")
        assertRejects(rawFile(header: #"{"x":"F32"}"#, data: data), "tensor 'x': entry is a string")
        assertRejects(rawFile(header: #"{"x":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: data),
                      "tensor 'x': duplicate field 'dtype'")
    }

    func testDuplicateTensorNames() {
        let header = #"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        assertRejects(rawFile(header: header, data: leBytes([1, 2])), "duplicate tensor name 'x'")
    }

    func testBadMetadata() {
        assertRejects(rawFile(header: #"{"__metadata__":{"K":64}}"#), "__metadata__ value for key 'K' is a number, expected a string")
        assertRejects(rawFile(header: #"{"__metadata__":{"K":null}}"#), "__metadata__ value for key 'K' is null")
        assertRejects(rawFile(header: #"{"__metadata__":["K"]}"#), "__metadata__ is a list, expected an object")
        assertRejects(rawFile(header: #"{"__metadata__":{"K":"1","K":"2"}}"#), "__metadata__: duplicate key 'K'")
        assertRejects(rawFile(header: #"{"__metadata__":{},"__metadata__":{}}"#), "duplicate key '__metadata__'")
    }

    func testBadJSON() {
        assertRejects(rawFile(header: #"{"x":{"dtype":"F32""#), "header is not valid JSON")
        assertRejects(rawFile(header: "not json"), "header is not valid JSON", "at byte 0")
        assertRejects(rawFile(header: #"{"a":1,}"#), "header is not valid JSON")
        assertRejects(rawFile(header: #"{"a":tru}"#), "header is not valid JSON")
        assertRejects(rawFile(header: #"{} {}"#), "header is not valid JSON", "after the JSON value")
        assertRejects(rawFile(header: "{\"a\u{01}\":1}"), "header is not valid JSON", "control character")
        assertRejects(rawFile(header: #"{"\ud800":1}"#), "header is not valid JSON", "surrogate")
        assertRejects(rawFile(header: String(repeating: "[", count: 100_000)), "header is not valid JSON", "nesting")
        assertRejects(rawFile(header: "[]"), "header is a list, expected a JSON object")
        assertRejects(rawFile(header: "{}\0\0"), "header is not valid JSON")
    }

    func testInvalidUTF8() {
        var bytes = rawFile(header: #"{"__metadata__":{"k":"xx"}}"#)
        bytes[8 + 22] = 0xFF
        assertRejects(bytes, "header is not valid UTF-8 (byte 22 of the header)")
        var overlong = rawFile(header: #"{"__metadata__":{"k":"xx"}}"#)
        overlong[8 + 22] = 0xC0
        overlong[8 + 23] = 0xAF
        assertRejects(overlong, "not valid UTF-8")
    }

    func testAcceptsEscapesUnicodeAndWhitespace() throws {
        let header = "\n{ \"na\\u00efve\\ud83d\\ude80\\/\\\"x\" : { \"data_offsets\" : [ 0 , 4 ] , \"shape\" : [ ] , \"dtype\" : \"F32\" , \"extra\" : [true, false, null, -1.5e3] } ,\r\n\t\"é\": {\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[4,12]} }   "
        let data = leBytes([2.5]) + [9, 0, 0, 0, 0, 0, 0, 0]
        let f = try SafeTensorsFile(bytes: rawFile(header: header, data: data))
        XCTAssertEqual(try f.floats("naïve🚀/\"x"), [2.5])
        XCTAssertEqual(try f.int64s("é"), [9])
    }

    func testAcceptsHolesAndUnsortedOffsets() throws {
        // Not what the writer produces, but valid for readers: entries need not be contiguous or ordered.
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        let f = try SafeTensorsFile(bytes: rawFile(header: header, data: leBytes([1, 2, 3, 4])))
        XCTAssertEqual(try f.floats("a"), [3])
        XCTAssertEqual(try f.floats("b"), [1])
    }

    func testUnreadablePaths() throws {
        let dir = try makeTempDir(self)
        assertSafeTensorsError(["cannot open", "No such file"]) { try SafeTensorsFile(path: dir + "/missing.safetensors") }
        assertSafeTensorsError(["not a regular file"]) { try SafeTensorsFile(path: dir) }
        do {
            _ = try SafeTensorsFile(path: dir + "/missing.safetensors")
        } catch let e as SafeTensorsError {
            XCTAssertEqual(e.path, dir + "/missing.safetensors")
        }
    }

    /// Every prefix of a valid file is rejected cleanly (no crash), except the full file.
    func testEveryTruncationIsRejected() {
        let full = valid()
        for n in 0..<full.count {
            XCTAssertThrowsError(try SafeTensorsFile(bytes: Array(full.prefix(n))), "prefix of \(n) bytes")
        }
        XCTAssertNoThrow(try SafeTensorsFile(bytes: full))
    }
}
