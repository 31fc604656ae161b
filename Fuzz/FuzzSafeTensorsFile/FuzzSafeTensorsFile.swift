// libFuzzer target: the input is a whole safetensors file (8-byte length, header, data), as
// `SafeTensorsFile(path:)` reads it. A file that validates is read back through every accessor
// and written out again (`SafeTensorsWriter`), which must reproduce it. A thrown error is the
// right answer to a bad file; a trap is a bug.
import SafeTensors

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let f = try? SafeTensorsFile(bytes: bytes) else { return 0 }
    readBack(f)
    return 0
}

/// Reads every tensor through the accessors and checks the writer reproduces the file's content.
func readBack(_ f: SafeTensorsFile) {
    var w = SafeTensorsWriter()
    w.metadata = f.metadata
    for name in f.names {
        let t = try! f.info(name)
        precondition(t.byteCount == t.elementCount * t.dtype.size, "byte count of '\(name)'")
        try! f.expect(name, dtype: t.dtype, shape: t.shape)
        switch t.dtype {
        case .f32:
            let v = try! f.floats(name)
            precondition(v.count == t.elementCount)
            w.add(name, shape: t.shape, floats: v)
        case .i64:
            let v = try! f.int64s(name)
            precondition(v.count == t.elementCount)
            w.add(name, shape: t.shape, int64s: v)
        }
    }
    _ = f.names(withPrefix: "encoder_q.")
    let again = try! SafeTensorsFile(bytes: w.serialized())
    precondition(again.metadata == f.metadata, "metadata changed in a round trip")
    precondition(again.names == f.names, "names changed in a round trip")
    for name in f.names {
        let a = try! f.info(name), b = try! again.info(name)
        precondition(a.dtype == b.dtype && a.shape == b.shape, "'\(name)' changed in a round trip")
        let x = try! f.withRawBytes(name) { Array($0) }
        let y = try! again.withRawBytes(name) { Array($0) }
        precondition(x == y, "data of '\(name)' changed in a round trip")
    }
}
