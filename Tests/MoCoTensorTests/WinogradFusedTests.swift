import XCTest
import CWinograd
@testable import MoCoTensor

/// The fused F(4×4, 3×3) convolution (`moco_winograd4_fused_avx2`) against the unfused path it
/// replaces (input transform, OpenBLAS's α² GEMMs, output transform). The transforms are the same
/// operations; only the tile GEMMs' rounding may differ (both sum over C with FMA, in blocks of
/// their own), so outputs agree to a few float32 roundings of Σ_c |U||V| per product: the bound
/// is 1e-6 of Σ_k,c,ξ-scaled magnitudes, far below a wrong tile, band, lane or channel (order 1).
/// Shapes: maps smaller than, equal to and not a multiple of the tile, so that the first and last
/// bands of rows are partial; widths that leave 8-wide blocks partial; channel counts that leave
/// the GEMM's blocks of 4 rows and 24 columns partial; partial groups of 8 samples; sample ranges
/// inside the batch; a y with other samples' values around it, which must stay untouched; rows
/// of 1, 2, 4, 5, 6, 7 and 13 tiles (the GEMM's column blocks of 24, 16 and 8 in each mix).
final class WinogradFusedTests: XCTestCase {
    let shapes: [(N: Int, n0: Int, nb: Int, C: Int, K: Int, H: Int, W: Int)] = [
        (1, 0, 1, 1, 1, 1, 1), (3, 1, 2, 4, 3, 5, 6), (9, 0, 9, 8, 8, 7, 7), (20, 3, 14, 5, 7, 9, 4),
        (8, 0, 8, 16, 16, 14, 14), (4, 0, 4, 16, 16, 28, 28), (11, 2, 9, 6, 17, 3, 13),
        (19, 1, 17, 3, 2, 28, 28), (2, 0, 2, 2, 5, 17, 23), (10, 1, 8, 32, 32, 14, 14), (9, 0, 9, 64, 64, 7, 7),
        (3, 0, 3, 13, 6, 30, 50), (5, 0, 5, 8, 9, 6, 20),
    ]

    override func setUpWithError() throws {
        try XCTSkipUnless(WinogradFused.isAvailable, "this CPU has no AVX2 and FMA")
    }

    func values(_ n: Int, seed: UInt64) -> [Float] {
        var rng = Xoshiro(seed: seed)
        return (0..<n).map { _ in rng.normal() }
    }

    func testFusedMatchesUnfused() {
        for (i, s) in shapes.enumerated() {
            let x = FloatBuffer(values(s.C * s.N * s.H * s.W, seed: UInt64(i)))
            let w = FloatBuffer(values(s.K * s.C * 9, seed: 50 + UInt64(i)))
            let u = FloatBuffer(count: 36 * s.K * s.C)
            WinogradVariant.f4x4.transformFilter(w.ptr, outChannels: s.K, inChannels: s.C, adjoint: false, into: u.ptr)
            let ws = FloatBuffer(count: WinogradVariant.f4x4.workspaceFloats(inChannels: s.C, outChannels: s.K, height: s.H,
                                                                              width: s.W, samples: s.nb))
            XCTAssertLessThanOrEqual(moco_winograd4_fused_workspace(s.C, s.K, s.H, s.W), ws.count, "workspace \(s)")
            let count = s.K * s.N * s.H * s.W
            let yU = FloatBuffer(count: count), yF = FloatBuffer(count: count)
            yU.ptr.update(repeating: 7, count: count); yF.ptr.update(repeating: 7, count: count)
            winogradConvUnfused(WinogradF4.self, x.ptr, s.N, s.n0, s.nb, s.C, s.K, s.H, s.W, u.ptr, yU.ptr, ws.ptr)
            ws.ptr.update(repeating: .nan, count: ws.count)
            moco_winograd4_fused_avx2(x.ptr, s.N, s.n0, s.nb, s.C, s.K, s.H, s.W, u.ptr, yF.ptr, ws.ptr)
            // The scale of a product term: Σ_c |w||x| over a 3x3 window is ~ 9·C·E|w||x| ≈ 9·C·(2/π).
            let scale = Float(9 * s.C) * 0.64
            var worst: Float = 0
            for k in 0..<s.K {
                for n in 0..<s.N {
                    for p in 0..<s.H * s.W {
                        let j = (k * s.N + n) * s.H * s.W + p
                        if n < s.n0 || n >= s.n0 + s.nb {
                            if yF.ptr[j] != 7 { XCTFail("\(s): sample \(n) outside the range was written"); return }
                            continue
                        }
                        worst = max(worst, abs(yF.ptr[j] - yU.ptr[j]) / scale)
                    }
                }
            }
            print("WinogradFusedTests \(s): worst difference / scale = \(worst)")
            XCTAssertLessThan(worst, 1e-5, "\(s)")
            XCTAssertTrue(yF.array.allSatisfy { $0.isFinite }, "\(s)")
        }
    }

    /// The AVX-512 tile GEMM (16-float registers, blocks of 8 rows and 48 columns) gives the AVX2
    /// one's bits: every output is the same sum over c in order with one FMA per term, whatever
    /// register holds it. Bit for bit, on every shape above (their K of 1-64 leave the blocks of
    /// 8 and 4 rows partial; their 1-13 tiles per row give each column-block tail of 8 to 40), on
    /// two batches of values, and with the samples outside n0..<n0+nb untouched.
    func testAVX512GivesTheSameBits() throws {
        try XCTSkipUnless(moco_winograd4_fused_avx512_available() != 0, "this CPU has no AVX-512 F")
        for (i, s) in shapes.enumerated() {
            for trial in 0..<2 {
                let seed = UInt64(100 * trial + i)
                let x = FloatBuffer(values(s.C * s.N * s.H * s.W, seed: seed))
                let w = FloatBuffer(values(s.K * s.C * 9, seed: 50 + seed))
                let u = FloatBuffer(count: 36 * s.K * s.C)
                WinogradVariant.f4x4.transformFilter(w.ptr, outChannels: s.K, inChannels: s.C, adjoint: false, into: u.ptr)
                let wsCount = moco_winograd4_fused_workspace(s.C, s.K, s.H, s.W)
                let ws2 = FloatBuffer(count: wsCount), ws5 = FloatBuffer(count: wsCount)
                ws2.ptr.update(repeating: .nan, count: wsCount); ws5.ptr.update(repeating: .nan, count: wsCount)
                let count = s.K * s.N * s.H * s.W
                let y2 = FloatBuffer(count: count), y5 = FloatBuffer(count: count)
                y2.ptr.update(repeating: 7, count: count); y5.ptr.update(repeating: 7, count: count)
                moco_winograd4_fused_avx2(x.ptr, s.N, s.n0, s.nb, s.C, s.K, s.H, s.W, u.ptr, y2.ptr, ws2.ptr)
                moco_winograd4_fused_avx512(x.ptr, s.N, s.n0, s.nb, s.C, s.K, s.H, s.W, u.ptr, y5.ptr, ws5.ptr)
                var differing = 0
                for j in 0..<count where y2.ptr[j].bitPattern != y5.ptr[j].bitPattern { differing += 1 }
                XCTAssertEqual(differing, 0, "\(s), trial \(trial): \(differing) of \(count) outputs differ")
                XCTAssertTrue(y5.array.allSatisfy { $0.isFinite }, "\(s)")
            }
        }
    }

    func testSetting() {
        XCTAssertNil(WinogradFused.problem(environment: [:]))
        XCTAssertNil(WinogradFused.problem(environment: ["MOCO_AVX512": "1"]))
        XCTAssertNil(WinogradFused.problem(environment: ["MOCO_AVX512": "0"]))
        XCTAssertEqual(WinogradFused.problem(environment: ["MOCO_AVX512": "off"]),
                       "MOCO_AVX512='off' must be 1 (the default: the fused Winograd kernel's AVX-512 tile GEMM where the CPU has it) or 0 (its AVX2 one)")
        if WinogradFused.isAvailable {
            XCTAssertEqual(WinogradFused.kernelName, WinogradFused.usesAVX512 ? "avx512" : "avx2")
        } else {
            XCTAssertEqual(WinogradFused.kernelName, "")
        }
    }

    /// `winogradConv` takes the fused path exactly where `WinogradFused.applies` says, and the
    /// rule keeps the wide stages on small maps (U read once per band would dominate) unfused.
    func testWhereItApplies() {
        XCTAssertTrue(WinogradFused.applies(inChannels: 16, outChannels: 16, width: 28))    // ResNet-20 stage 1
        XCTAssertTrue(WinogradFused.applies(inChannels: 32, outChannels: 32, width: 14))    // stage 2
        XCTAssertFalse(WinogradFused.applies(inChannels: 64, outChannels: 64, width: 7))    // stage 3
        XCTAssertTrue(WinogradFused.applies(inChannels: 64, outChannels: 64, width: 32))    // ResNet-18 stage 1
        XCTAssertFalse(WinogradFused.applies(inChannels: 128, outChannels: 128, width: 16)) // ResNet-18 stage 2
    }
}
