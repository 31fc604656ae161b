import XCTest
import CWinograd
@testable import MoCoTensor

/// The AVX2 transforms of F(4×4, 3×3) (`CWinograd`) against the portable Swift ones they replace
/// on CPUs with AVX2: the same bits, for maps smaller than, equal to and not a multiple of the
/// tile, widths that leave 8-wide blocks partial, one to three groups of 8 samples with a partial
/// last group, and sample ranges inside the batch. (Whether the transforms are right at all is
/// `WinogradTests`' and the finite-difference tests' concern; both run whichever path the CPU takes.)
final class WinogradAVX2Tests: XCTestCase {
    let shapes: [(N: Int, n0: Int, nb: Int, C: Int, H: Int, W: Int)] = [
        (1, 0, 1, 1, 1, 1), (3, 1, 2, 4, 5, 6), (9, 0, 9, 8, 7, 7), (20, 3, 14, 5, 9, 4),
        (8, 0, 8, 2, 14, 14), (4, 0, 4, 16, 28, 28), (11, 2, 9, 6, 3, 13), (19, 1, 17, 3, 28, 28), (2, 0, 2, 2, 17, 23),
    ]

    override func setUpWithError() throws {
        try XCTSkipUnless(WinogradAVX2.isAvailable, "this CPU has no AVX2")
    }

    /// Normal values with exact zeros, and signed zeros, mixed in.
    func values(_ n: Int, seed: UInt64) -> [Float] {
        var rng = Xoshiro(seed: seed)
        return (0..<n).map { i in i % 11 == 0 ? 0 : (i % 13 == 0 ? -0.0 : rng.normal()) }
    }

    func assertSameBits(_ a: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>, _ n: Int, _ what: String) {
        for i in 0..<n where a[i].bitPattern != b[i].bitPattern {
            XCTFail("\(what): element \(i) differs: \(a[i]) vs \(b[i])"); return
        }
    }

    func geometry(_ s: (N: Int, n0: Int, nb: Int, C: Int, H: Int, W: Int)) -> (T: Int, Hp: Int, Wp: Int, plane: Int) {
        let th = (s.H + 3) / 4, tw = (s.W + 3) / 4
        let T = (s.nb + 7) / 8 * 8 * th * tw
        return (T, th * 4 + 2, tw * 4 + 2, th * 4 * tw * 4)
    }

    func testInputTransformIsBitwiseTheSwiftOne() {
        for (i, s) in shapes.enumerated() {
            let g = geometry(s)
            let x = FloatBuffer(values(s.C * s.N * s.H * s.W, seed: UInt64(i)))
            let vS = FloatBuffer(count: 36 * s.C * g.T), vC = FloatBuffer(count: 36 * s.C * g.T)
            vS.ptr.update(repeating: .nan, count: vS.count); vC.ptr.update(repeating: .nan, count: vC.count)
            let pad = FloatBuffer(count: 8 * g.Hp * g.Wp), rows = FloatBuffer(count: 8 * 6 * g.Wp)
            pad.ptr.update(repeating: .nan, count: pad.count)
            winogradInput(WinogradF4.self, x.ptr, s.N, s.n0, s.nb, s.C, s.H, s.W,
                          V: UnsafeMutableRawPointer(vS.ptr).assumingMemoryBound(to: Lanes.self),
                          pad: UnsafeMutableRawPointer(pad.ptr).assumingMemoryBound(to: Lanes.self),
                          rows: UnsafeMutableRawPointer(rows.ptr).assumingMemoryBound(to: Lanes.self))
            pad.ptr.update(repeating: .nan, count: pad.count)
            moco_winograd4_input_avx2(x.ptr, s.N, s.n0, s.nb, s.C, s.H, s.W, vC.ptr, pad.ptr, rows.ptr)
            assertSameBits(vS.ptr, vC.ptr, vS.count, "input transform \(s)")
        }
    }

    func testOutputTransformIsBitwiseTheSwiftOne() {
        for (i, s) in shapes.enumerated() {
            let g = geometry(s), K = s.C
            let mm = FloatBuffer(values(36 * K * g.T, seed: 100 + UInt64(i)))
            let yS = FloatBuffer(count: K * s.N * s.H * s.W), yC = FloatBuffer(count: K * s.N * s.H * s.W)
            yS.ptr.update(repeating: 12345, count: yS.count); yC.ptr.update(repeating: 12345, count: yC.count)
            let plane = FloatBuffer(count: 8 * g.plane)
            plane.ptr.update(repeating: .nan, count: plane.count)
            winogradOutput(WinogradF4.self, M: UnsafeRawPointer(mm.ptr).assumingMemoryBound(to: Lanes.self),
                           s.N, s.n0, s.nb, K, s.H, s.W, yS.ptr,
                           plane: UnsafeMutableRawPointer(plane.ptr).assumingMemoryBound(to: Lanes.self))
            plane.ptr.update(repeating: .nan, count: plane.count)
            moco_winograd4_output_avx2(mm.ptr, s.N, s.n0, s.nb, K, s.H, s.W, yC.ptr, plane.ptr)
            assertSameBits(yS.ptr, yC.ptr, yS.count, "output transform \(s)")   // samples outside the range: untouched in both
        }
    }

    func testOutputGradientTransformIsBitwiseTheSwiftOne() {
        for (i, s) in shapes.enumerated() {
            let g = geometry(s), K = s.C
            let dY = FloatBuffer(values(K * s.N * s.H * s.W, seed: 200 + UInt64(i)))
            let mS = FloatBuffer(count: 36 * K * g.T), mC = FloatBuffer(count: 36 * K * g.T)
            mS.ptr.update(repeating: .nan, count: mS.count); mC.ptr.update(repeating: .nan, count: mC.count)
            let plane = FloatBuffer(count: 8 * g.plane)
            plane.ptr.update(repeating: .nan, count: plane.count)
            winogradOutputGradient(WinogradF4.self, dY.ptr, s.N, s.n0, s.nb, K, s.H, s.W,
                                   dM: UnsafeMutableRawPointer(mS.ptr).assumingMemoryBound(to: Lanes.self),
                                   plane: UnsafeMutableRawPointer(plane.ptr).assumingMemoryBound(to: Lanes.self))
            plane.ptr.update(repeating: .nan, count: plane.count)
            moco_winograd4_dy_avx2(dY.ptr, s.N, s.n0, s.nb, K, s.H, s.W, mC.ptr, plane.ptr)
            assertSameBits(mS.ptr, mC.ptr, mS.count, "output-gradient transform \(s)")
        }
    }
}
