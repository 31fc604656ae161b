// libFuzzer target: the input is a CIFAR-10 binary batch file (records of 1 label byte and
// 3072 pixel bytes), parsed as `CIFAR10.readBatch` parses it, with any whole number of records
// and with exactly one and two. What parses must hold 3072 pixels per label, each label < 10.
// A thrown error is the right answer to a bad file; a trap is a bug.
import MoCoData

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    for expected in [nil, 1, 2] as [Int?] {
        guard let (pixels, labels) = try? CIFAR10.parseBatch(bytes, path: "fuzz", expectedRecords: expected) else {
            continue
        }
        precondition(pixels.count == labels.count * 3072 && labels.allSatisfy { $0 >= 0 && $0 < 10 })
        precondition(expected.map { $0 == labels.count } ?? true)
    }
    return 0
}
