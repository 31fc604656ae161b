/// Grey from RGB by the ITU-R BT.601 luma weights, Y = 0.299 R + 0.587 G + 0.114 B rounded to
/// the nearest byte (the transform PIL's `convert("L")` documents).
enum Luma {
    /// src: [n, 3] RGB bytes -> dst: [n] grey bytes.
    static func fromRGB(_ src: UnsafePointer<UInt8>, count n: Int, into dst: UnsafeMutablePointer<UInt8>) {
        for i in 0..<n {
            let r = UInt32(src[3 * i]), g = UInt32(src[3 * i + 1]), b = UInt32(src[3 * i + 2])
            dst[i] = UInt8((299 * r + 587 * g + 114 * b + 500) / 1000)
        }
    }
}
