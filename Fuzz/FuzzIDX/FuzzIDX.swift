// libFuzzer target: the input is one IDX file (MNIST / Fashion-MNIST). It is parsed as the
// dataset loader parses it (3 dimensions for images, 1 for labels) and with the dimension count
// its own header states; an array that parses must have exactly as many bytes as the product of
// its dimensions. (Compressed files: FuzzIDXGzip.) A thrown error is the right answer to a bad
// file; a trap is a bug.
import MoCoData

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    check(try? IDX.parse(bytes, path: "fuzz", dimensions: 3), dimensions: 3)
    check(try? IDX.parse(bytes, path: "fuzz", dimensions: 1), dimensions: 1)
    if size >= 4 {
        let d = Int(bytes[3])
        check(try? IDX.parse(bytes, path: "fuzz", dimensions: d), dimensions: d)
    }
    return 0
}

func check(_ a: IDX.UByteArray?, dimensions: Int) {
    guard let a else { return }
    precondition(a.dims.count == dimensions, "dims \(a.dims) for \(dimensions) dimensions")
    var product = 1
    for d in a.dims {
        let (p, overflow) = product.multipliedReportingOverflow(by: d)
        precondition(!overflow, "dims \(a.dims) overflow")
        product = p
    }
    precondition(product == a.bytes.count, "dims \(a.dims) but \(a.bytes.count) bytes")
}
