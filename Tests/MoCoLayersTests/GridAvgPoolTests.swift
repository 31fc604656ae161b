import XCTest
import MoCoTensor
@testable import MoCoLayers

/// `GridAvgPool` against PyTorch's `adaptive_avg_pool2d(x, g).flatten(1)` on maps whose values
/// are their own positions (the expected values below are PyTorch 2.15's output for
/// `torch.arange(H*W).view(1, 1, H, W)`), and against a naive pool for layout and batching.
final class GridAvgPoolTests: XCTestCase {
    /// The map x[h, w] = h·W + w of one channel and one sample: y for a g×g grid.
    func pool(height H: Int, width W: Int, grid g: Int) -> [Float] {
        let x = FloatBuffer(count: H * W)
        for i in 0..<H * W { x.ptr[i] = Float(i) }
        let y = FloatBuffer(count: g * g)
        GridAvgPool.forward(x.ptr, channels: 1, batch: 1, height: H, width: W, grid: g, y.ptr)
        return y.array
    }

    func testMatchesPyTorchAdaptiveBins() {
        // 7 -> 2: rows 0..<4 and 3..<7 (the middle row in both cells).
        XCTAssertEqual(pool(height: 7, width: 7, grid: 2), [12, 15, 33, 36])
        XCTAssertEqual(pool(height: 7, width: 7, grid: 3), [8, 10, 12, 22, 24, 26, 36, 38, 40])
        XCTAssertEqual(pool(height: 7, width: 7, grid: 4),
                       [4, 5.5, 7.5, 9, 14.5, 16, 18, 19.5, 28.5, 30, 32, 33.5, 39, 40.5, 42.5, 44])
        XCTAssertEqual(pool(height: 4, width: 4, grid: 3), [2.5, 3.5, 4.5, 6.5, 7.5, 8.5, 10.5, 11.5, 12.5])
        // g = 1 is global average pooling; g = H is the map itself.
        XCTAssertEqual(pool(height: 7, width: 7, grid: 1), [24])
        XCTAssertEqual(pool(height: 3, width: 3, grid: 3), (0..<9).map(Float.init))
    }

    /// Channel-major input [C, N, H, W] to rows [N, C·g·g], against the global pool for g = 1
    /// and a direct sum for g = 2 on a non-square map.
    func testLayoutAndBatch() {
        let C = 3, N = 5, H = 6, W = 5
        var rng = Xoshiro(seed: 4)
        let x = FloatBuffer(count: C * N * H * W)
        for i in 0..<x.count { x.ptr[i] = rng.normal() }
        let global = GlobalAvgPool()
        global.plan(channels: C, batch: N, spatial: H * W, backward: false)
        global.forward(x.ptr)
        let y1 = FloatBuffer(count: N * C)
        GridAvgPool.forward(x.ptr, channels: C, batch: N, height: H, width: W, grid: 1, y1.ptr)
        for i in 0..<N * C { XCTAssertEqual(y1.ptr[i], global.y.ptr[i], accuracy: 1e-6) }

        let g = 2
        let y = FloatBuffer(count: N * C * g * g)
        GridAvgPool.forward(x.ptr, channels: C, batch: N, height: H, width: W, grid: g, y.ptr)
        // Height 6 -> rows 0..<3, 3..<6; width 5 -> columns 0..<3, 2..<5.
        let rows = [0..<3, 3..<6], cols = [0..<3, 2..<5]
        for n in 0..<N {
            for c in 0..<C {
                for i in 0..<g {
                    for j in 0..<g {
                        var s: Double = 0
                        for r in rows[i] { for q in cols[j] { s += Double(x.ptr[((c * N + n) * H + r) * W + q]) } }
                        let want = s / Double(rows[i].count * cols[j].count)
                        XCTAssertEqual(Double(y.ptr[n * C * g * g + (c * g + i) * g + j]), want, accuracy: 1e-5)
                    }
                }
            }
        }
    }
}
