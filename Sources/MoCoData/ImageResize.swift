import Foundation

/// Brings a decoded image of any size to a `size` x `size` square the way torchvision's
/// `transforms.Resize(size)` followed by `transforms.CenterCrop(size)` does: the shorter side is
/// scaled to `size` (the longer to `size * long / short`, truncated), then the centre square is
/// cut out (offset `round((long' - size) / 2)`, halves to even as Python's `round`). The aspect
/// ratio is kept; nothing is padded.
///
/// Resampling is separable and antialiased (the "bilinear, antialias=True" of torchvision and
/// PIL's BILINEAR filter): output sample `o` of an axis scaled by `scale = in / out` sits at
/// source coordinate `c = (o + 0.5) * scale`; it is the normalised sum of the source samples `i`
/// whose centres `i + 0.5` lie within `r = max(scale, 1)` of `c`, each weighted by the triangle
/// `1 - |i + 0.5 - c| / r`. Downscaling therefore averages every source pixel under the output
/// pixel (no aliasing), upscaling is plain bilinear interpolation, and a scale of 1 copies.
/// Results are rounded to the nearest byte.
public enum ImageResize {
    /// The size of the image after the shorter-side resize, and the crop's top-left corner.
    public static func geometry(height: Int, width: Int, size: Int) -> (height: Int, width: Int, top: Int, left: Int) {
        precondition(height > 0 && width > 0 && size > 0)
        let h = height <= width ? size : size * height / width
        let w = height <= width ? size * width / height : size
        return (h, w, centreOffset(h - size), centreOffset(w - size))
    }

    /// round(d / 2) with halves to even (Python's `round`, used by torchvision's CenterCrop).
    static func centreOffset(_ d: Int) -> Int {
        let k = d / 2
        return d % 2 == 0 || k % 2 == 0 ? k : k + 1
    }

    /// src: [height, width, channels] bytes -> dst: [channels, size, size] bytes (CHW).
    public static func resizeCentreCrop(_ src: UnsafePointer<UInt8>, height: Int, width: Int, channels: Int, size: Int,
                                        into dst: UnsafeMutablePointer<UInt8>) {
        let C = channels, plane = size * size
        if height == size && width == size {
            // Scale 1 on both axes: the resampling would copy; transpose HWC -> CHW directly.
            for c in 0..<C {
                let d = dst + c * plane
                for i in 0..<plane { d[i] = src[i * C + c] }
            }
            return
        }
        let g = geometry(height: height, width: width, size: size)
        let ax = ResampleAxis(input: width, resized: g.width, offset: g.left, count: size)
        let ay = ResampleAxis(input: height, resized: g.height, offset: g.top, count: size)
        // Source rows that any output row reads.
        let r0 = ay.first[0], r1 = ay.first[size - 1] + ay.taps[size - 1]
        let rowFloats = size * C
        let tmp = UnsafeMutablePointer<Float>.allocate(capacity: (r1 - r0) * rowFloats)
        let acc = UnsafeMutablePointer<Float>.allocate(capacity: rowFloats)
        defer { tmp.deallocate(); acc.deallocate() }
        ax.withPointers { xFirst, xTaps, xOffsets, xWeights in
            // Horizontal: src rows [r0, r1) of [width, C] -> tmp rows of [size, C] floats.
            for y in r0..<r1 {
                let s = src + y * width * C
                let t = tmp + (y - r0) * rowFloats
                for o in 0..<size {
                    let w = xWeights + xOffsets[o], n = xTaps[o]
                    let p = s + xFirst[o] * C
                    for c in 0..<C {
                        var sum: Float = 0
                        for k in 0..<n { sum += w[k] * Float(p[k * C + c]) }
                        t[o * C + c] = sum
                    }
                }
            }
        }
        ay.withPointers { yFirst, yTaps, yOffsets, yWeights in
            // Vertical: tmp [rows, size, C] -> dst [C, size, size], one output row at a time.
            for o in 0..<size {
                let w = yWeights + yOffsets[o], n = yTaps[o]
                let base = tmp + (yFirst[o] - r0) * rowFloats
                acc.initialize(repeating: 0, count: rowFloats)
                for k in 0..<n {
                    let row = base + k * rowFloats, wk = w[k]
                    for i in 0..<rowFloats { acc[i] += wk * row[i] }
                }
                for c in 0..<C {
                    let d = dst + c * plane + o * size
                    for x in 0..<size { d[x] = quantize(acc[x * C + c]) }
                }
            }
        }
    }

    @inline(__always)
    static func quantize(_ v: Float) -> UInt8 {
        UInt8(truncatingIfNeeded: Int32(min(max(v, 0), 255) + 0.5))
    }
}

/// The weights of one axis of `ImageResize`: output sample `o` (of `count`, starting at `offset`
/// in an axis of `resized` samples scaled from `input`) reads `taps[o]` source samples from
/// `first[o]`, with weights `weights[offsets[o] ..< offsets[o] + taps[o]]` summing to 1.
struct ResampleAxis {
    let first: [Int]
    let taps: [Int]
    let offsets: [Int]
    let weights: [Float]

    init(input: Int, resized: Int, offset: Int, count: Int) {
        let scale = Double(input) / Double(resized)
        let radius = max(scale, 1)
        var first = [Int](), taps = [Int](), offsets = [Int](), weights = [Float]()
        first.reserveCapacity(count); taps.reserveCapacity(count); offsets.reserveCapacity(count)
        for o in 0..<count {
            let centre = (Double(offset + o) + 0.5) * scale
            let lo = max(0, Int((centre - radius + 0.5).rounded(.down)))
            let hi = min(input, Int((centre + radius + 0.5).rounded(.down)))
            var w = [Double]()
            for i in lo..<hi { w.append(max(0, 1 - abs(Double(i) + 0.5 - centre) / radius)) }
            // Drop zero weights at the ends (a source centre exactly at the radius).
            var a = 0, b = w.count
            while a < b - 1 && w[a] == 0 { a += 1 }
            while b > a + 1 && w[b - 1] == 0 { b -= 1 }
            let total = w[a..<b].reduce(0, +)
            first.append(lo + a); taps.append(b - a); offsets.append(weights.count)
            for k in a..<b { weights.append(Float(w[k] / total)) }
        }
        self.first = first; self.taps = taps; self.offsets = offsets; self.weights = weights
    }

    func withPointers<R>(_ body: (UnsafePointer<Int>, UnsafePointer<Int>, UnsafePointer<Int>, UnsafePointer<Float>) -> R) -> R {
        first.withUnsafeBufferPointer { f in
            taps.withUnsafeBufferPointer { t in
                offsets.withUnsafeBufferPointer { o in
                    weights.withUnsafeBufferPointer { w in body(f.baseAddress!, t.baseAddress!, o.baseAddress!, w.baseAddress!) }
                }
            }
        }
    }
}
