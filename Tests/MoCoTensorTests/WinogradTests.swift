import XCTest
@testable import MoCoTensor

/// Winograd F(2×2, 3×3) and F(4×4, 3×3) against the definition of a 'same' 3×3 correlation,
/// computed in Double.
///
/// Tolerance: each output is compared relative to Σ|w|·|x| over its 9·C terms (the size of the
/// largest partial sum, which bounds any summation's rounding). Direct Float summation is within
/// ~9C·2⁻²⁴ of that in the worst case and ~√(9C)·2⁻²⁴ typically. Winograd adds the transforms'
/// rounding, amplified by their entries (row sums of |Bᵀ|, |G|, |Aᵀ|: at most 2, 1.5, 3 for
/// F(2×2) and 10, 1, 19 for F(4×4), applied along both dimensions), which is why the error grows
/// with the tile size (Barabasz et al., "Error analysis and improving the accuracy of Winograd
/// convolution for deep neural networks", ACM TOMS 2020). Measured worst
/// cases over these shapes are 3.1e-7 (F(2×2)) and 6.4e-6 (F(4×4)); the bounds asserted, 2e-6
/// and 2e-5, leave a 3-6x margin and are still far below what a wrong tap or tile offset gives
/// (an error of the order of one term, ≥ 1e-2 of Σ|w||x| for 9C ≤ 153 terms).
final class WinogradTests: XCTestCase {
    /// y[k, n, oh, ow] = Σ_c,i,j w[k, c, i, j] · x[c, n, oh + i - 1, ow + j - 1] (zero outside),
    /// with the scale Σ|w||x| of each output.
    func reference(x: [Float], N: Int, C: Int, H: Int, W: Int, w: [Float], K: Int) -> (y: [Double], scale: [Double]) {
        var y = [Double](repeating: 0, count: K * N * H * W), scale = y
        for k in 0..<K { for n in 0..<N { for oh in 0..<H { for ow in 0..<W {
            var acc = 0.0, mag = 0.0
            for c in 0..<C { for i in 0..<3 { for j in 0..<3 {
                let ih = oh + i - 1, iw = ow + j - 1
                guard ih >= 0 && ih < H && iw >= 0 && iw < W else { continue }
                let t = Double(w[((k * C + c) * 3 + i) * 3 + j]) * Double(x[((c * N + n) * H + ih) * W + iw])
                acc += t; mag += abs(t)
            } } }
            let o = ((k * N + n) * H + oh) * W + ow
            y[o] = acc; scale[o] = mag
        } } } }
        return (y, scale)
    }

    /// Runs `variant` on samples n0..<n0+nb of a batch of N and returns the worst relative error;
    /// samples outside the range must keep their canary value.
    func worstError(_ v: WinogradVariant, N: Int, n0: Int, nb: Int, C: Int, K: Int, H: Int, W: Int,
                    adjoint: Bool, seed: UInt64) -> Double {
        var rng = Xoshiro(seed: seed)
        // For the adjoint the convolution maps K channels to C (dX from dY).
        let inC = adjoint ? K : C, outC = adjoint ? C : K
        let x = (0..<(inC * N * H * W)).map { _ in rng.normal() }
        let w = (0..<(K * C * 9)).map { _ in rng.normal() }
        // The kernel the convolution applies: w itself, or wT[c, k, i, j] = w[k, c, 2-i, 2-j].
        var applied = w
        if adjoint {
            for k in 0..<K { for c in 0..<C { for e in 0..<9 { applied[(c * K + k) * 9 + e] = w[(k * C + c) * 9 + 8 - e] } } }
        }
        let ref = reference(x: x, N: N, C: inC, H: H, W: W, w: applied, K: outC)
        let u = FloatBuffer(count: v.filterFloats(inChannels: C, outChannels: K))
        let ws = FloatBuffer(count: v.workspaceFloats(inChannels: inC, outChannels: outC, height: H, width: W, samples: nb))
        ws.ptr.update(repeating: .nan, count: ws.count)   // no read of unwritten workspace
        let xb = FloatBuffer(x), y = FloatBuffer(count: outC * N * H * W)
        y.ptr.update(repeating: 12345, count: y.count)
        w.withUnsafeBufferPointer { v.transformFilter($0.baseAddress!, outChannels: K, inChannels: C, adjoint: adjoint, into: u.ptr) }
        // The filters split over workers: the same bits.
        let u3 = FloatBuffer(count: u.count)
        w.withUnsafeBufferPointer { v.transformFilter($0.baseAddress!, outChannels: K, inChannels: C, adjoint: adjoint, into: u3.ptr, threads: 3) }
        if memcmp(u.ptr, u3.ptr, u.count * 4) != 0 { XCTFail("\(v) filter transform on 3 threads differs at K \(K) C \(C)"); return .infinity }
        v.conv3x3(xb.ptr, batch: N, first: n0, count: nb, inChannels: inC, outChannels: outC, height: H, width: W,
                  filter: u.ptr, output: y.ptr, workspace: ws.ptr)
        var worst = 0.0
        for k in 0..<outC { for n in 0..<N { for e in 0..<(H * W) {
            let o = (k * N + n) * H * W + e
            if n < n0 || n >= n0 + nb {
                if y.ptr[o] != 12345 { XCTFail("\(v) wrote outside its samples at k \(k) n \(n)"); return .infinity }
                continue
            }
            let err = abs(Double(y.ptr[o]) - ref.y[o]) / max(ref.scale[o], 1e-30)
            if !(err <= 1) { XCTFail("\(v) output \(y.ptr[o]) vs \(ref.y[o]) at k \(k) n \(n) e \(e)"); return .infinity }
            worst = max(worst, err)
        } } }
        return worst
    }

    /// Shapes: maps smaller than, equal to and not a multiple of the tile; one to three groups
    /// of 8 samples (partial last group); channel counts 1..17; a sample range inside the batch.
    let shapes: [(N: Int, n0: Int, nb: Int, C: Int, K: Int, H: Int, W: Int)] = [
        (1, 0, 1, 1, 1, 1, 1), (2, 0, 2, 3, 2, 2, 3), (3, 1, 2, 4, 5, 5, 6), (9, 0, 9, 8, 8, 7, 7),
        (17, 0, 17, 16, 16, 8, 8), (20, 3, 14, 5, 17, 9, 4), (8, 0, 8, 2, 3, 14, 14), (4, 0, 4, 16, 8, 28, 28),
        (11, 2, 9, 6, 6, 3, 13),
    ]

    func check(_ v: WinogradVariant, adjoint: Bool, bound: Double) {
        var worst = 0.0
        for (i, s) in shapes.enumerated() {
            worst = max(worst, worstError(v, N: s.N, n0: s.n0, nb: s.nb, C: s.C, K: s.K, H: s.H, W: s.W,
                                          adjoint: adjoint, seed: UInt64(100 + i)))
        }
        XCTAssertLessThan(worst, bound, "\(v) adjoint \(adjoint)")
        print("WinogradTests \(v.rawValue) adjoint=\(adjoint): worst error / Σ|w||x| = \(worst)")
    }

    func testF2x2Forward() { check(.f2x2, adjoint: false, bound: 2e-6) }
    func testF2x2Adjoint() { check(.f2x2, adjoint: true, bound: 2e-6) }
    func testF4x4Forward() { check(.f4x4, adjoint: false, bound: 2e-5) }
    func testF4x4Adjoint() { check(.f4x4, adjoint: true, bound: 2e-5) }

    /// A sample's result depends on which other samples share its chunk only at GEMM rounding:
    /// OpenBLAS computes the last 8 columns of a column block with another kernel than the rest
    /// (measured on this machine: the last 8 of N = 16..256 columns differ from the same columns
    /// inside a wider GEMM by an ulp), so a split of the batch over workers or ranks changes
    /// Winograd's output by ~1 ulp of M, amplified by the output transform (|Aᵀ| row sums up to
    /// 19). The same chunking is bitwise reproducible.
    func testChunkingChangesOnlyRounding() {
        for v in WinogradVariant.allCases {
            var rng = Xoshiro(seed: 77)
            let N = 19, C = 8, K = 9, H = 10, W = 10
            let x = FloatBuffer((0..<(C * N * H * W)).map { _ in rng.normal() })
            let w = (0..<(K * C * 9)).map { _ in rng.normal() }
            let u = FloatBuffer(count: v.filterFloats(inChannels: C, outChannels: K))
            w.withUnsafeBufferPointer { v.transformFilter($0.baseAddress!, outChannels: K, inChannels: C, adjoint: false, into: u.ptr) }
            let ws = FloatBuffer(count: v.workspaceFloats(inChannels: C, outChannels: K, height: H, width: W, samples: N))
            func pieces(_ sizes: [Int]) -> FloatBuffer {
                let y = FloatBuffer(count: K * N * H * W)
                var n0 = 0
                for nb in sizes {
                    v.conv3x3(x.ptr, batch: N, first: n0, count: nb, inChannels: C, outChannels: K, height: H, width: W,
                              filter: u.ptr, output: y.ptr, workspace: ws.ptr)
                    n0 += nb
                }
                return y
            }
            let whole = pieces([N]), split = pieces([3, 9, 1, 6]), again = pieces([3, 9, 1, 6])
            XCTAssertEqual(split.array.map(\.bitPattern), again.array.map(\.bitPattern), "\(v): same chunks, same bits")
            var worst: Float = 0, scale: Float = 0
            for i in 0..<whole.count { worst = max(worst, abs(whole.ptr[i] - split.ptr[i])); scale = max(scale, abs(whole.ptr[i])) }
            XCTAssertLessThan(worst, 1e-5 * scale, "\(v): chunks of 19 vs 3, 9, 1, 6")
        }
    }

    /// The weight gradient in the Winograd domain (`weightGrad3x3` over chunks, then
    /// `filterGradient`) against dW[k, c, i, j] = Σ_n,oh,ow dY[k, n, oh, ow] · x[c, n, oh+i-1, ow+j-1]
    /// in Double, relative to Σ|dY||x| of each tap. The sum runs over N·H·W terms (up to 3136
    /// here) instead of 9C; the transforms amplify rounding as in the forward (A applied twice,
    /// row sums of |A| up to 3 and 15 for F(2×2) and F(4×4); Gᵀ's up to 2 and 0.6). Measured worst
    /// cases over these shapes: 5.0e-7 (F(2×2)) and 1.7e-6 (F(4×4)); the bounds, 2e-6 and 1e-5,
    /// leave a 4-6x margin and stay far below a wrong tap or tile offset (an error of the order
    /// of one term, ≥ 3e-4 of Σ|dY||x| for N·H·W ≤ 3136 terms).
    func weightGradError(_ v: WinogradVariant, N: Int, C: Int, K: Int, H: Int, W: Int, pieces: [Int], seed: UInt64) -> Double {
        var rng = Xoshiro(seed: seed)
        let x = (0..<(C * N * H * W)).map { _ in rng.normal() }
        let dY = (0..<(K * N * H * W)).map { _ in rng.normal() }
        var ref = [Double](repeating: 0, count: K * C * 9), scale = ref
        for k in 0..<K { for c in 0..<C { for i in 0..<3 { for j in 0..<3 {
            var acc = 0.0, mag = 0.0
            for n in 0..<N { for oh in 0..<H { for ow in 0..<W {
                let ih = oh + i - 1, iw = ow + j - 1
                guard ih >= 0 && ih < H && iw >= 0 && iw < W else { continue }
                let t = Double(dY[((k * N + n) * H + oh) * W + ow]) * Double(x[((c * N + n) * H + ih) * W + iw])
                acc += t; mag += abs(t)
            } } }
            ref[((k * C + c) * 3 + i) * 3 + j] = acc; scale[((k * C + c) * 3 + i) * 3 + j] = mag
        } } } }
        let most = pieces.max()!
        let ws = FloatBuffer(count: v.workspaceFloats(inChannels: C, outChannels: K, height: H, width: W, samples: most))
        ws.ptr.update(repeating: .nan, count: ws.count)   // no read of unwritten workspace
        let dU = FloatBuffer(count: v.filterFloats(inChannels: C, outChannels: K))
        dU.ptr.update(repeating: .nan, count: dU.count)   // the first chunk overwrites
        let xb = FloatBuffer(x), db = FloatBuffer(dY), dW = FloatBuffer(count: K * C * 9)
        var n0 = 0
        for nb in pieces {
            v.weightGrad3x3(xb.ptr, db.ptr, batch: N, first: n0, count: nb, inChannels: C, outChannels: K, height: H, width: W,
                            gradient: dU.ptr, accumulate: n0 > 0, workspace: ws.ptr)
            n0 += nb
        }
        v.filterGradient(dU.ptr, outChannels: K, inChannels: C, into: dW.ptr)
        var worst = 0.0
        for e in 0..<(K * C * 9) {
            let err = abs(Double(dW.ptr[e]) - ref[e]) / max(scale[e], 1e-30)
            if !(err <= 1) { XCTFail("\(v) dW \(dW.ptr[e]) vs \(ref[e]) at \(e)"); return .infinity }
            worst = max(worst, err)
        }
        return worst
    }

    func checkWeightGrad(_ v: WinogradVariant, bound: Double) {
        // Shapes as above, and the batch cut into chunks (accumulated in dU).
        let cases: [(N: Int, C: Int, K: Int, H: Int, W: Int, pieces: [Int])] = [
            (1, 1, 1, 1, 1, [1]), (2, 3, 2, 2, 3, [2]), (3, 4, 5, 5, 6, [1, 2]), (9, 8, 8, 7, 7, [9]),
            (17, 16, 16, 8, 8, [8, 9]), (20, 5, 17, 9, 4, [3, 14, 3]), (8, 2, 3, 14, 14, [8]),
            (4, 16, 8, 28, 28, [4]), (11, 6, 6, 3, 13, [11]),
        ]
        var worst = 0.0
        for (i, s) in cases.enumerated() {
            worst = max(worst, weightGradError(v, N: s.N, C: s.C, K: s.K, H: s.H, W: s.W, pieces: s.pieces, seed: UInt64(300 + i)))
        }
        XCTAssertLessThan(worst, bound, "\(v) weight gradient")
        print("WinogradTests \(v.rawValue) weight gradient: worst error / Σ|dY||x| = \(worst)")
    }

    func testF2x2WeightGradient() { checkWeightGrad(.f2x2, bound: 2e-6) }
    func testF4x4WeightGradient() { checkWeightGrad(.f4x4, bound: 1e-5) }
}
