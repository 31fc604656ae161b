import XCTest
import MoCoTensor
@testable import MoCoLayers

final class ConvGradientTests: XCTestCase {
    /// Direct convolution in Double on [N, C, H, W] (independent of im2col) for the forward check.
    static func directConv(x: [Float], n N: Int, c C: Int, h H: Int, w W: Int, weight: [Float], k K: Int,
                    kernel kk: Int, stride s: Int, pad p: Int) -> [Double] {
        let Ho = (H + 2 * p - kk) / s + 1, Wo = (W + 2 * p - kk) / s + 1
        var y = [Double](repeating: 0, count: K * N * Ho * Wo)   // channel-major [K, N, Ho, Wo]
        for k in 0..<K { for n in 0..<N { for oh in 0..<Ho { for ow in 0..<Wo {
            var acc = 0.0
            for c in 0..<C { for i in 0..<kk { for j in 0..<kk {
                let ih = oh * s - p + i, iw = ow * s - p + j
                if ih < 0 || ih >= H || iw < 0 || iw >= W { continue }
                acc += Double(weight[((k * C + c) * kk + i) * kk + j]) * Double(x[((c * N + n) * H + ih) * W + iw])
            } } }
            y[((k * N + n) * Ho + oh) * Wo + ow] = acc
        } } } }
        return y
    }

    func runConv(c: Int, k: Int, kernel: Int, stride: Int, pad: Int, n: Int, h: Int, w: Int,
                 algorithm: ConvAlgorithm = .im2col, weightGrad: WeightGradAlgorithm = .winograd,
                 strided: StridedConvAlgorithm = .direct, expectDirect: Bool = false) {
        var rng = Xoshiro(seed: UInt64(c * 1000 + k * 100 + kernel * 10 + stride), stream: [1])
        let params = ParameterStore()
        let ws = Workspace()
        let conv = Conv2d("conv", params: params, workspace: ws, inChannels: c, outChannels: k,
                          kernel: kernel, stride: stride, padding: pad, engine: EngineConfig(conv: algorithm, weightGrad: weightGrad, strided: strided))
        params.finalize()
        for i in 0..<params.count { params.values.ptr[i] = rng.normal() * 0.5 }
        let (ho, wo) = conv.plan(batch: n, height: h, width: w, backward: true)
        if stride == 1 {
            XCTAssertEqual(conv.winograd, algorithm.variant(height: h, width: w), "the layer must run the algorithm under test")
        }
        XCTAssertEqual(conv.direct, expectDirect && DirectConv.isAvailable, "the strided forward must run the path under test")
        let x = randomBuffer(c * n * h * w, &rng)
        let r = randomBuffer(k * n * ho * wo, &rng)
        conv.forward(x.ptr)
        // Forward against the direct definition.
        let ref = Self.directConv(x: x.array, n: n, c: c, h: h, w: w, weight: params.array("conv.weight"), k: k,
                             kernel: kernel, stride: stride, pad: pad)
        for i in 0..<ref.count { XCTAssertEqual(Double(conv.y.ptr[i]), ref[i], accuracy: 1e-4 * (1 + abs(ref[i]))) }
        conv.backward(r.ptr)
        let dX = conv.dX.array, dW = params.gradArray("conv.weight")
        let loss = { () -> Double in conv.forward(x.ptr); return dot(r, conv.y.ptr) }
        let gc = GradCheck()
        gc.check("conv\(kernel)x\(kernel)s\(stride) dX", p: x.ptr, count: x.count, analytic: dX, loss: loss, rng: &rng)
        gc.check("conv\(kernel)x\(kernel)s\(stride) dW", p: params.values.ptr + conv.weightOffset,
                 count: dW.count, analytic: dW, loss: loss, rng: &rng)
    }

    func testConv3x3Stride1() { runConv(c: 3, k: 4, kernel: 3, stride: 1, pad: 1, n: 2, h: 5, w: 6) }
    func testConv3x3Stride2() { runConv(c: 2, k: 3, kernel: 3, stride: 2, pad: 1, n: 3, h: 7, w: 6) }
    func testConv1x1Stride1() { runConv(c: 4, k: 3, kernel: 1, stride: 1, pad: 0, n: 2, h: 3, w: 3) }
    func testConv1x1Stride2() { runConv(c: 3, k: 5, kernel: 1, stride: 2, pad: 0, n: 2, h: 6, w: 5) }
    func testConv5x5Pad2() { runConv(c: 2, k: 2, kernel: 5, stride: 1, pad: 2, n: 2, h: 6, w: 7) }
    func testConv3x3NoPad() { runConv(c: 2, k: 3, kernel: 3, stride: 1, pad: 0, n: 2, h: 5, w: 5) }
    /// Winograd forward, dX and dW (the default `--conv-dw winograd`): odd map sizes, a partial
    /// group of 8 samples, the smallest channel counts that take the Winograd path; and the
    /// Winograd forward and dX with dW on im2col (`--conv-dw im2col`).
    func testConv3x3Winograd2() { runConv(c: 8, k: 9, kernel: 3, stride: 1, pad: 1, n: 3, h: 5, w: 6, algorithm: .winograd2) }
    func testConv3x3Winograd4() { runConv(c: 9, k: 8, kernel: 3, stride: 1, pad: 1, n: 10, h: 7, w: 5, algorithm: .winograd4) }
    func testConv3x3Winograd4Im2colWeightGrad() {
        runConv(c: 9, k: 8, kernel: 3, stride: 1, pad: 1, n: 10, h: 7, w: 5, algorithm: .winograd4, weightGrad: .im2col)
    }
    func testConv3x3Winograd2Im2colWeightGrad() {
        runConv(c: 8, k: 9, kernel: 3, stride: 1, pad: 1, n: 3, h: 5, w: 6, algorithm: .winograd2, weightGrad: .im2col)
    }

    /// Strided convolutions on the direct kernel (`--conv-strided direct`, where it applies):
    /// output widths of one 8-lane vector per row (2 rows per tile), of one and of two 16-column
    /// blocks, odd heights (a tile's second row outside the map), a 5x5 stride-3 kernel, and
    /// output channel counts that take every block size of the kernel (6, 5, 4 + 4, 3, 2, 1).
    /// The backward stays on im2col; the forward is checked against the definition, both
    /// gradients against finite differences.
    func testStridedDirect3x3Width8() {
        runConv(c: 3, k: 7, kernel: 3, stride: 2, pad: 1, n: 10, h: 13, w: 15, expectDirect: true)   // 7x8, K = 6 + 1
    }
    func testStridedDirect3x3Width14() {
        runConv(c: 2, k: 13, kernel: 3, stride: 2, pad: 1, n: 3, h: 9, w: 28, expectDirect: true)   // 5x14, K = 6 + 6 + 1
    }
    func testStridedDirect3x3Width30() {
        runConv(c: 2, k: 8, kernel: 3, stride: 2, pad: 1, n: 2, h: 5, w: 60, expectDirect: true)    // 3x30, K = 4 + 4
    }
    func testStridedDirect2x2() {
        runConv(c: 4, k: 11, kernel: 2, stride: 2, pad: 0, n: 9, h: 14, w: 13, expectDirect: true)  // 7x6, K = 6 + 5
    }
    /// A strided 1x1 convolution stays on im2col (`DirectConv.applies`).
    func testStrided1x1StaysOnIm2col() {
        runConv(c: 4, k: 11, kernel: 1, stride: 2, pad: 0, n: 9, h: 14, w: 13)
    }
    func testStridedDirect5x5Stride3() {
        runConv(c: 2, k: 9, kernel: 5, stride: 3, pad: 2, n: 2, h: 7, w: 40, expectDirect: true)    // 3x14, K = 6 + 3
    }
    func testStridedDirectTwoChannels() {
        runConv(c: 1, k: 2, kernel: 3, stride: 2, pad: 1, n: 3, h: 16, w: 16, expectDirect: true)   // 8x8, K = 2
    }
    /// The same geometry with `--conv-strided im2col` takes im2col + GEMM.
    func testStridedIm2col() {
        runConv(c: 3, k: 7, kernel: 3, stride: 2, pad: 1, n: 10, h: 13, w: 15, strided: .im2col)
    }

    /// winograd4 runs F(2×2) on maps with 4 or fewer rows or columns; im2col for the stem-like
    /// layers with fewer than 8 channels and for strided or 1x1 convolutions.
    func testAlgorithmSelection() {
        XCTAssertEqual(ConvAlgorithm.winograd4.variant(height: 7, width: 7), .f4x4)
        XCTAssertEqual(ConvAlgorithm.winograd4.variant(height: 4, width: 4), .f2x2)
        XCTAssertEqual(ConvAlgorithm.winograd4.variant(height: 32, width: 3), .f2x2)
        XCTAssertEqual(ConvAlgorithm.winograd2.variant(height: 28, width: 28), .f2x2)
        XCTAssertNil(ConvAlgorithm.im2col.variant(height: 28, width: 28))
        func planned(_ c: Int, _ k: Int, kernel: Int, stride: Int, h: Int) -> WinogradVariant? {
            let conv = Conv2d("c", params: ParameterStore(), workspace: Workspace(), inChannels: c, outChannels: k,
                              kernel: kernel, stride: stride, padding: kernel / 2, engine: EngineConfig(conv: .winograd4))
            conv.plan(batch: 2, height: h, width: h, backward: true)
            return conv.winograd
        }
        XCTAssertEqual(planned(16, 16, kernel: 3, stride: 1, h: 28), .f4x4)
        XCTAssertEqual(planned(512, 512, kernel: 3, stride: 1, h: 4), .f2x2)
        XCTAssertNil(planned(1, 16, kernel: 3, stride: 1, h: 28))
        XCTAssertNil(planned(16, 32, kernel: 3, stride: 2, h: 28))
        XCTAssertNil(planned(16, 32, kernel: 1, stride: 1, h: 28))
    }

    /// A batch larger than one chunk (im2col: 2 samples; Winograd: one group of 8) must give
    /// the result of the definition, with every algorithm.
    func testChunkedConvMatchesDirect() {
        for algorithm in ConvAlgorithm.allCases {
            var rng = Xoshiro(seed: 7)
            let params = ParameterStore(), ws = Workspace()
            let conv = Conv2d("c", params: params, workspace: ws, inChannels: 64, outChannels: 8, kernel: 3, stride: 1, padding: 1,
                              engine: EngineConfig(conv: algorithm))
            params.finalize()
            for i in 0..<params.count { params.values.ptr[i] = rng.normal() * 0.1 }
            let n = 9, h = 64, w = 64   // rows 576 x 4096 columns per sample: 2 samples per chunk
            conv.plan(batch: n, height: h, width: w, backward: false)
            let x = randomBuffer(64 * n * h * w, &rng)
            conv.forward(x.ptr)
            let ref = Self.directConv(x: x.array, n: n, c: 64, h: h, w: w, weight: params.array("c.weight"), k: 8, kernel: 3, stride: 1, pad: 1)
            var worst = 0.0
            for i in stride(from: 0, to: ref.count, by: 97) { worst = max(worst, abs(Double(conv.y.ptr[i]) - ref[i])) }
            XCTAssertLessThan(worst, 1e-3, "\(algorithm)")
        }
    }
}
