import XCTest
import MoCoTensor
@testable import MoCoLayers

/// The engine's own workers (`EngineConfig.threads`): the batch-split convolutions, the
/// channel-split BatchNorm and the elementwise kernels must agree with the single-threaded
/// engine (whose gradients the finite-difference tests check) and be bitwise reproducible.
final class ParallelEngineTests: XCTestCase {
    /// A planned ResNet-20 encoder with its own engine settings, and its inputs.
    func encoder(threads: Int, batch n: Int = 6, algorithm: ConvAlgorithm) -> (Encoder, FloatBuffer, FloatBuffer) {
        let e = Encoder(architecture: .resnet20, head: .mlp, inChannels: 1, dim: 16,
                        engine: EngineConfig(threads: threads, conv: algorithm))
        e.initialize(seed: 5)
        e.plan(batch: n, height: 12, width: 12, backward: true)
        var rng = Xoshiro(seed: 9)
        return (e, randomBuffer(n * 144, &rng), randomBuffer(n * 16, &rng))
    }

    /// Forward + backward of a whole ResNet-20 encoder; returns (projection, gradients).
    func run(threads: Int, batch n: Int = 6, algorithm: ConvAlgorithm) -> ([Float], [Float]) {
        let (e, x, dP) = encoder(threads: threads, batch: n, algorithm: algorithm)
        return pass(e, x, dP)
    }

    func pass(_ e: Encoder, _ x: FloatBuffer, _ dP: FloatBuffer) -> ([Float], [Float]) {
        e.forward(x.ptr, training: true)
        let proj = array(e.projection, e.batch * 16)
        e.backward(dP.ptr)
        return (proj, e.params.grads.array)
    }

    /// Engine settings belong to each encoder: two encoders with different algorithms and
    /// thread counts, run alternately in one process, each give exactly what they give alone.
    func testEncodersWithDifferentEnginesCoexist() {
        let aloneA = run(threads: 1, algorithm: .im2col), aloneB = run(threads: 2, algorithm: .winograd4)
        let (a, xa, da) = encoder(threads: 1, algorithm: .im2col)
        let (b, xb, db) = encoder(threads: 2, algorithm: .winograd4)
        for _ in 0..<2 {
            let ra = pass(a, xa, da), rb = pass(b, xb, db)
            XCTAssertEqual(ra.0, aloneA.0); XCTAssertEqual(ra.1, aloneA.1)
            XCTAssertEqual(rb.0, aloneB.0); XCTAssertEqual(rb.1, aloneB.1)
        }
        XCTAssertNil(a.convs[1].winograd)
        XCTAssertEqual(b.convs[1].winograd, .f4x4)
        XCTAssertNotEqual(aloneA.0, aloneB.0, "the two algorithms round differently: the comparison is not vacuous")
    }

    func maxDifference(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? 0 }
    func maxAbs(_ a: [Float]) -> Float { a.map { abs($0) }.max() ?? 0 }

    /// With im2col every convolution's per-sample arithmetic is the same for 1 and 2 workers,
    /// so only the order of reductions differs and the gradients can be compared closely.
    func testTwoWorkersMatchOneAndAreReproducible() {
        let (p1, g1) = run(threads: 1, algorithm: .im2col)
        let (p2, g2) = run(threads: 2, algorithm: .im2col)
        let (p2b, g2b) = run(threads: 2, algorithm: .im2col)
        // Same thread count: bitwise identical.
        XCTAssertEqual(p2, p2b)
        XCTAssertEqual(g2, g2b)
        // Forward: nothing is reduced across workers, but OpenBLAS may block a 1-thread GEMM
        // over a shorter N differently from the 2-thread one, so outputs differ by Float
        // rounding only (~1e-7 relative per layer, 20 layers deep): 1e-5 of the scale.
        XCTAssertLessThan(maxDifference(p1, p2), 1e-5 * maxAbs(p1))
        // Weight gradients: the two workers' partial sums over samples are added at the end
        // instead of accumulated in one GEMM, a different Float summation order; relative error
        // of a few hundred Float roundings of the largest gradient is enough (1e-4 of the scale).
        XCTAssertLessThan(maxDifference(g1, g2), 1e-4 * maxAbs(g1))
    }

    /// Winograd (the default): each worker's GEMMs have fewer tile columns than the 1-worker
    /// GEMM, which OpenBLAS may round differently; the forward must still agree to a few
    /// F(4×4) roundings (WinogradTests: ≤ 2e-5 of Σ|w||x| per layer), and 2-worker runs must
    /// be bitwise reproducible. Gradients are not compared across thread counts: at this tiny
    /// batch one ReLU input lies within 1e-5 of zero (seed 5), and a rounding-level change
    /// flips its mask (found while landing Winograd: one flipped element of layer3.2.bn1).
    func testWinogradTwoWorkersForwardAndReproducible() {
        let (p1, _) = run(threads: 1, algorithm: .winograd4)
        let (p2, g2) = run(threads: 2, algorithm: .winograd4)
        let (p2b, g2b) = run(threads: 2, algorithm: .winograd4)
        XCTAssertEqual(p2, p2b)
        XCTAssertEqual(g2, g2b)
        XCTAssertLessThan(maxDifference(p1, p2), 1e-4 * maxAbs(p1))
    }

    /// The fused Winograd convolution hands groups of 8 samples to the workers as they become
    /// free (`Parallel.dynamic`), forward and input gradient: every sample's outputs are the
    /// same bits for 1, 2 and 3 workers and on a repeated run (each lane of the kernel is one
    /// sample), and all are written.
    func testFusedWinogradGroupsGiveTheSameBitsForAnyWorkerCount() throws {
        try XCTSkipUnless(WinogradFused.isAvailable, "this CPU has no AVX2 and FMA")
        let n = 37, h = 12, w = 12, c = 16
        var ys: [[UInt32]] = [], dxs: [[UInt32]] = []
        for threads in [1, 2, 3, 2] {
            var rng = Xoshiro(seed: 3)
            let params = ParameterStore(), ws = Workspace()
            let conv = Conv2d("c", params: params, workspace: ws, inChannels: c, outChannels: c, kernel: 3, stride: 1,
                              padding: 1, engine: EngineConfig(threads: threads, conv: .winograd4))
            params.finalize()
            for i in 0..<params.count { params.values.ptr[i] = rng.normal() * 0.2 }
            _ = conv.plan(batch: n, height: h, width: w, backward: true)
            XCTAssertTrue(WinogradFused.applies(inChannels: c, outChannels: c, width: w))
            let x = randomBuffer(c * n * h * w, &rng), r = randomBuffer(c * n * h * w, &rng)
            conv.y.ptr.update(repeating: .nan, count: c * n * h * w)
            conv.dX.ptr.update(repeating: .nan, count: c * n * h * w)
            conv.forward(x.ptr)
            conv.backward(r.ptr)
            let y = conv.y.array.prefix(c * n * h * w), dx = conv.dX.array.prefix(c * n * h * w)
            XCTAssertFalse(y.contains { $0.isNaN } || dx.contains { $0.isNaN }, "\(threads) workers left outputs unwritten")
            ys.append(y.map(\.bitPattern)); dxs.append(dx.map(\.bitPattern))
        }
        for i in 1..<ys.count {
            XCTAssertEqual(ys[i], ys[0], "forward, run \(i)")
            XCTAssertEqual(dxs[i], dxs[0], "input gradient, run \(i)")
        }
    }

    /// The 2-worker convolution against the definition, strided and not, odd batch.
    func testConvTwoWorkersGradients() {
        // (kernel, stride, channels, algorithm): im2col shapes, and the Winograd path (>= 8 channels).
        let cases: [(Int, Int, Int, ConvAlgorithm)] = [(3, 1, 3, .im2col), (3, 2, 3, .im2col), (1, 2, 3, .im2col),
                                                       (3, 1, 8, .winograd2), (3, 1, 8, .winograd4)]
        for (k, s, c, algorithm) in cases {
            var rng = Xoshiro(seed: UInt64(10 * k + s))
            let params = ParameterStore(), ws = Workspace()
            let conv = Conv2d("c", params: params, workspace: ws, inChannels: c, outChannels: c + 1, kernel: k, stride: s,
                              padding: k / 2, engine: EngineConfig(threads: 2, conv: algorithm))
            params.finalize()
            for i in 0..<params.count { params.values.ptr[i] = rng.normal() * 0.5 }
            let n = 5, h = 6, w = 5
            let (ho, wo) = conv.plan(batch: n, height: h, width: w, backward: true)
            XCTAssertEqual(conv.winograd, k == 3 && s == 1 ? algorithm.variant(height: h, width: w) : nil)
            let x = randomBuffer(c * n * h * w, &rng), r = randomBuffer((c + 1) * n * ho * wo, &rng)
            conv.forward(x.ptr)
            conv.backward(r.ptr)
            let loss = { () -> Double in conv.forward(x.ptr); return dot(r, conv.y.ptr) }
            let gc = GradCheck()
            gc.check("2 workers conv\(k) s\(s) \(algorithm) dX", p: x.ptr, count: x.count, analytic: conv.dX.array, loss: loss, rng: &rng)
            gc.check("2 workers conv\(k) s\(s) \(algorithm) dW", p: params.values.ptr, count: params.count,
                     analytic: params.grads.array, loss: loss, rng: &rng)
        }
    }

    /// BLAS.sgemm split over 2 workers (rows or columns of C, every transpose) against the
    /// single call. Each element is the same single-threaded OpenBLAS dot product either way,
    /// so the tolerance only covers a possibly different k-blocking: 1e-5 relative.
    func testSplitSgemmMatchesSingleCall() {
        var rng = Xoshiro(seed: 4)
        for (m, n, k) in [(200, 37, 150), (30, 300, 160), (129, 129, 70)] {
            for tA in [false, true] {
                for tB in [false, true] {
                    let a = randomBuffer(m * k, &rng), b = randomBuffer(k * n, &rng)
                    let c1 = randomBuffer(m * n, &rng), c2 = FloatBuffer(c1.array)
                    let lda = tA ? m : k, ldb = tB ? k : n
                    BLAS.sgemm(transA: tA, transB: tB, m: m, n: n, k: k, alpha: 0.5, a: a.ptr, lda: lda, b: b.ptr, ldb: ldb,
                               beta: 0.25, c: c1.ptr, ldc: n, threads: 1)
                    BLAS.sgemm(transA: tA, transB: tB, m: m, n: n, k: k, alpha: 0.5, a: a.ptr, lda: lda, b: b.ptr, ldb: ldb,
                               beta: 0.25, c: c2.ptr, ldc: n, threads: 2)
                    for i in 0..<(m * n) {
                        XCTAssertEqual(c1.ptr[i], c2.ptr[i], accuracy: 1e-5 * (1 + abs(c1.ptr[i])), "\(m)x\(n)x\(k) \(tA) \(tB)")
                    }
                }
            }
        }
    }
}
