import Foundation

/// The normalised 1-D Gaussian of `torchvision.transforms.functional._get_gaussian_kernel1d`:
/// taps at x = -(k-1)/2 ... (k-1)/2, weight exp(-x^2 / (2 sigma^2)), divided by their sum.
public func gaussianKernel1D(size k: Int, sigma: Float) -> [Float] {
    precondition(k > 0 && k % 2 == 1 && sigma > 0, "gaussianKernel1D: odd size and positive sigma")
    let half = Float(k - 1) / 2
    var w = (0..<k).map { i -> Float in
        let x = Float(i) - half
        return exp(-0.5 * (x / sigma) * (x / sigma))
    }
    let s = w.reduce(0, +)
    for i in 0..<k { w[i] /= s }
    return w
}

/// Separable Gaussian blur. Edges: `reflect` is `torchvision` GaussianBlur's conv2d of the kernel
/// outer product after `pad(mode: "reflect")` (mirror without repeating the edge); `replicate`
/// extends the edge pixels (Pillow's `GaussianBlur`). The separable form is exact because the
/// 2-D kernel is the outer product of the 1-D one.
/// img: [C, H, W] in place; tmp: C*H*W scratch; kernel: [k], k odd, k/2 < min(H, W)
public func gaussianBlur(_ img: UnsafeMutablePointer<Float>, tmp: UnsafeMutablePointer<Float>, channels: Int,
                         height: Int, width: Int, kernel: UnsafePointer<Float>, size k: Int,
                         edge: BlurKernel.Edge = .reflect) {
    let r = k / 2
    precondition(r < height && r < width, "gaussianBlur: kernel \(k) too large for \(height)x\(width)")
    let mirror = edge == .reflect
    @inline(__always) func reflect(_ i: Int, _ n: Int) -> Int {
        mirror ? (i < 0 ? -i : (i >= n ? 2 * n - 2 - i : i)) : min(max(i, 0), n - 1)
    }
    let n = height * width
    for c in 0..<channels {
        let src = img + c * n, mid = tmp + c * n
        // Horizontal pass: src -> mid.
        for y in 0..<height {
            let row = src + y * width, out = mid + y * width
            for x in 0..<width {
                var s: Float = 0
                if x >= r && x + r < width {
                    let base = row + x - r
                    for t in 0..<k { s += kernel[t] * base[t] }
                } else {
                    for t in 0..<k { s += kernel[t] * row[reflect(x + t - r, width)] }
                }
                out[x] = s
            }
        }
        // Vertical pass: mid -> src, accumulating whole rows.
        for y in 0..<height {
            let out = src + y * width
            for x in 0..<width { out[x] = 0 }
            for t in 0..<k {
                let w = kernel[t]
                let row = mid + reflect(y + t - r, height) * width
                for x in 0..<width { out[x] += w * row[x] }
            }
        }
    }
}
