// libFuzzer target: the input is an IDX image file and an IDX label file, as
// `Dataset.loadIDX` reads them: a 2-byte little-endian length L, then L bytes of the image file
// ([N, H, W]), then the label file ([N]). Both are parsed and made into a `Dataset`, whose
// initializer checks (with preconditions) that pixels and labels agree. A thrown error is the
// right answer to bad files; a trap is a bug.
import MoCoData

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard size >= 2 else { return 0 }
    let split = min(2 + (Int(bytes[0]) | Int(bytes[1]) << 8), size)
    let imageFile = Array(bytes[2..<split]), labelFile = Array(bytes[split...])
    guard let images = try? IDX.parse(imageFile, path: "images", dimensions: 3),
          let labels = try? IDX.parse(labelFile, path: "labels", dimensions: 1) else { return 0 }
    guard let ds = try? Dataset.fromIDX(name: "fuzz", images: images, labels: labels, imagesPath: "images",
                                        labelsPath: "labels", mean: [0.5], std: [0.25]) else { return 0 }
    precondition(ds.labels.allSatisfy { $0 >= 0 && $0 < 10 })
    return 0
}
