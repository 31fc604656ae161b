import MoCoTensor

/// Adaptive average pooling of channel-major maps to a g×g grid, flattened per sample in
/// PyTorch's order: `adaptive_avg_pool2d(x, g).flatten(1)`. Cell (i, j) averages rows
/// floor(i·H/g) ..< ceil((i+1)·H/g) and the same columns of W (PyTorch's adaptive bins, which
/// overlap by a row when g does not divide H: 7 -> 2 gives rows 0..<4 and 3..<7).
///
/// Global pooling (g = 1) discards where in the image a feature fires; on 28-px centred,
/// aligned images (Fashion-MNIST) that layout carries class information that raw-pixel
/// classifiers use (81.8% kNN on pixels alone). The grid keeps it at g² times the width.
public enum GridAvgPool {
    /// The bins of an adaptive pool of `size` to `cells`: cell i covers lo ..< hi.
    @inlinable public static func bin(_ i: Int, cells: Int, size: Int) -> (lo: Int, hi: Int) {
        (i * size / cells, ((i + 1) * size + cells - 1) / cells)
    }

    /// x: [C, N, H, W] -> y: [N, C·g·g], y[n, (c·g + i)·g + j] = mean of x[c, n] over cell (i, j).
    public static func forward(_ x: UnsafePointer<Float>, channels: Int, batch: Int, height: Int, width: Int,
                               grid g: Int, _ y: UnsafeMutablePointer<Float>) {
        precondition(g >= 1 && g <= height && g <= width, "grid \(g) larger than the \(height)x\(width) map")
        let hw = height * width, row = channels * g * g
        for c in 0..<channels {
            for n in 0..<batch {
                let map = x + (c * batch + n) * hw
                let out = y + n * row + c * g * g
                for i in 0..<g {
                    let (r0, r1) = bin(i, cells: g, size: height)
                    for j in 0..<g {
                        let (c0, c1) = bin(j, cells: g, size: width)
                        var s: Float = 0
                        for r in r0..<r1 {
                            let line = map + r * width
                            for q in c0..<c1 { s += line[q] }
                        }
                        out[i * g + j] = s / Float((r1 - r0) * (c1 - c0))
                    }
                }
            }
        }
    }
}
