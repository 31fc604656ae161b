// libFuzzer target: the input is an image file's bytes, decoded as the image-folder reader
// decodes it (`ImageCodec.decode`: PNG through libpng, JPEG through libjpeg-turbo, by magic
// bytes), then resized and centre-cropped as `--image-size` does, to 32 and to 7 pixels.
// What decodes must have 1 or 3 channels, sides within the codec's limits and exactly
// width x height x channels samples. A thrown error is the right answer to a bad file; a trap,
// a leak or an allocation past the limits is a bug. The pixel limit is 2^20 here, not the
// reader's 2^26: the decoders' paths are the same at any size, and a third of the inputs the
// fuzzer keeps state sizes in between, which at 2^26 held it to about 65 executions a second
// (ImageCodecTests check the 2^26 limit itself).
import MoCoData

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let image = try? ImageCodec.decode(bytes, path: "fuzz", maxPixels: 1 << 20) else { return 0 }
    precondition(image.channels == 1 || image.channels == 3, "channels \(image.channels)")
    precondition(image.width > 0 && image.height > 0 && image.width <= 32768 && image.height <= 32768)
    precondition(image.pixels.count == image.width * image.height * image.channels)
    for side in [32, 7] {
        var out = [UInt8](repeating: 0, count: image.channels * side * side)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                ImageResize.resizeCentreCrop(src.baseAddress!, height: image.height, width: image.width,
                                             channels: image.channels, size: side, into: dst.baseAddress!)
            }
        }
    }
    return 0
}
