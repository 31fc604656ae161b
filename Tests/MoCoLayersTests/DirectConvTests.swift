import XCTest
import MoCoTensor
@testable import MoCoLayers

/// The strided convolutions' direct forward (`DirectConv`, `--conv-strided direct`) against
/// im2col + GEMM on the same weights and inputs, where it is chosen, and its independence of
/// the worker count.
final class DirectConvTests: XCTestCase {
    /// A convolution with weights drawn from `seed`, planned for a forward over n x h x w.
    func layer(c: Int, k: Int, kernel: Int, stride: Int, pad: Int, n: Int, h: Int, w: Int,
               strided: StridedConvAlgorithm, threads: Int = 1, seed: UInt64) -> Conv2d {
        var rng = Xoshiro(seed: seed, stream: [2])
        let params = ParameterStore()
        let conv = Conv2d("c", params: params, workspace: Workspace(), inChannels: c, outChannels: k, kernel: kernel,
                          stride: stride, padding: pad, engine: EngineConfig(threads: threads, strided: strided))
        params.finalize()
        for i in 0..<params.count { params.values.ptr[i] = rng.normal() * 0.3 }
        conv.plan(batch: n, height: h, width: w, backward: false)
        return conv
    }

    /// ResNet-20's and ResNet-18's strided 3x3 layers (batch 9: a partial group of 8 samples) and
    /// random geometries: the direct forward equals im2col + GEMM up to float32 rounding of sums
    /// of C·k² products, each taken in a different order. Bound: 1e-5 of Σ|w| of the output
    /// channel times max |x|, about 170 roundings of 2^-24 (C·k² is at most 1152 here); a tap read
    /// from a wrong position changes an output by the order of one |w|·|x| term.
    func testMatchesIm2colOnResNetAndRandomShapes() throws {
        try XCTSkipUnless(DirectConv.isAvailable, "the direct kernel needs AVX2 and FMA")
        var shapes: [(c: Int, k: Int, kernel: Int, stride: Int, pad: Int, h: Int, w: Int)] = [
            (16, 32, 3, 2, 1, 28, 28), (32, 64, 3, 2, 1, 14, 14), (64, 128, 3, 2, 1, 32, 32), (128, 256, 3, 2, 1, 16, 16),
        ]
        var rng = Xoshiro(seed: 11)
        while shapes.count < 30 {
            let kernel = [2, 3, 3, 5][Int(rng.next() % 4)], stride = 2 + Int(rng.next() % 2)
            let pad = Int(rng.next() % UInt64(kernel / 2 + 1))
            let h = kernel + Int(rng.next() % 40), w = kernel + Int(rng.next() % 70)
            let g = ConvGeometry(channels: 1, height: h, width: w, kernel: kernel, stride: stride, padding: pad)
            guard DirectConv.applies(g) else { continue }
            shapes.append((1 + Int(rng.next() % 9), 1 + Int(rng.next() % 20), kernel, stride, pad, h, w))
        }
        for (i, s) in shapes.enumerated() {
            let n = 9
            let direct = layer(c: s.c, k: s.k, kernel: s.kernel, stride: s.stride, pad: s.pad, n: n, h: s.h, w: s.w,
                               strided: .direct, seed: UInt64(i))
            let gemm = layer(c: s.c, k: s.k, kernel: s.kernel, stride: s.stride, pad: s.pad, n: n, h: s.h, w: s.w,
                             strided: .im2col, seed: UInt64(i))
            XCTAssertTrue(direct.direct, "\(s)")
            XCTAssertFalse(gemm.direct, "\(s)")
            var xr = Xoshiro(seed: UInt64(100 + i))
            let x = randomBuffer(s.c * n * s.h * s.w, &xr)
            // The scale of an output's rounding: Σ|w| of its channel times max |x|.
            let wAbs = direct.params.array("c.weight").map { Double(abs($0)) }
            let xMax = Double(x.array.map(abs).max() ?? 0)
            let taps = s.c * s.kernel * s.kernel, plane = n * direct.geometry.outHeight * direct.geometry.outWidth
            direct.forward(x.ptr); gemm.forward(x.ptr)
            XCTAssertEqual(direct.y.count, gemm.y.count)
            var worst = 0.0
            for k in 0..<s.k {
                let scale = wAbs[k * taps ..< (k + 1) * taps].reduce(0, +) * xMax
                for j in k * plane ..< (k + 1) * plane {
                    worst = max(worst, abs(Double(direct.y.ptr[j]) - Double(gemm.y.ptr[j])) / max(scale, 1e-30))
                }
            }
            XCTAssertLessThan(worst, 1e-5, "\(s): relative difference \(worst)")
        }
    }

    /// Groups of 8 samples go to whichever worker is free; every sample's outputs are computed by
    /// one worker in a fixed order, so 1, 2 and 3 workers give the same bits.
    func testSameBitsForAnyWorkerCount() throws {
        try XCTSkipUnless(DirectConv.isAvailable, "the direct kernel needs AVX2 and FMA")
        let n = 19
        var xr = Xoshiro(seed: 5)
        let x = randomBuffer(16 * n * 28 * 28, &xr)
        var outputs: [[Float]] = []
        for threads in [1, 2, 3] {
            let conv = layer(c: 16, k: 32, kernel: 3, stride: 2, pad: 1, n: n, h: 28, w: 28, strided: .direct,
                             threads: threads, seed: 3)
            XCTAssertTrue(conv.direct)
            conv.forward(x.ptr)
            outputs.append(conv.y.array)
        }
        XCTAssertEqual(outputs[0], outputs[1])
        XCTAssertEqual(outputs[0], outputs[2])
    }

    /// Where the direct kernel is chosen: strided layers of 2x2 and larger kernels whose output
    /// rows fill at least 3/4 of its tiles (ResNet-20's and ResNet-18's 3x3 ones, except
    /// ResNet-18's 4x4 output), never stride 1 or a 1x1 kernel.
    func testSelection() {
        func g(_ h: Int, kernel: Int = 3, stride: Int = 2) -> ConvGeometry {
            ConvGeometry(channels: 16, height: h, width: h, kernel: kernel, stride: stride, padding: kernel / 2)
        }
        let a = DirectConv.isAvailable
        XCTAssertEqual(DirectConv.applies(g(28)), a)          // 14x14
        XCTAssertEqual(DirectConv.applies(g(14)), a)          // 7x7
        XCTAssertEqual(DirectConv.applies(g(32)), a)          // 16x16
        XCTAssertEqual(DirectConv.applies(g(16)), a)          // 8x8
        XCTAssertFalse(DirectConv.applies(g(8)))              // 4x4: half of each tile
        XCTAssertFalse(DirectConv.applies(g(28, stride: 1)))  // Winograd's or im2col's
        XCTAssertFalse(DirectConv.applies(g(28, kernel: 1, stride: 1)))
        XCTAssertFalse(DirectConv.applies(g(28, kernel: 1)))     // 1x1 stride 2: im2col's subsampling
    }
}
