import XCTest
import CWinograd
@testable import MoCoTensor

/// `moco_gemm_abt_avx2`, the Winograd weight gradient's GEMM c[M, N] (+)= a[M, T] @ b[N, T]ᵀ
/// (CWinogradDW.c), against the sum in Double: every block shape of its 4 x 3 register tiling
/// and its edges (M, N from 1 to 13 and 11), strided rows, writing and accumulating, and
/// nothing outside c's M x N cells written.
final class WinogradDWGemmTests: XCTestCase {
    func testAgainstDoubleOnEveryEdge() throws {
        try XCTSkipUnless(WinogradFused.isAvailable, "the kernel needs AVX2 and FMA")
        var rng = Xoshiro(seed: 17)
        var worst = 0.0
        for trial in 0..<60 {
            let M = 1 + trial % 13, N = 1 + (trial * 7) % 11
            let T = 8 * (1 + Int(rng.next() % 80))
            let lda = T + Int(rng.next() % 9), ldb = T + Int(rng.next() % 9), ldc = N + Int(rng.next() % 5)
            let accumulate = trial % 2 == 1
            let a = (0..<(M * lda)).map { _ in rng.normal() }, b = (0..<(N * ldb)).map { _ in rng.normal() }
            let c0 = (0..<(M * ldc)).map { _ in rng.normal() }
            var c = c0
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                moco_gemm_abt_avx2(ap.baseAddress!, lda, bp.baseAddress!, ldb, M, N, T, cp.baseAddress!, ldc, accumulate ? 1 : 0)
            } } }
            for i in 0..<M {
                for j in 0..<ldc {
                    let e = i * ldc + j
                    guard j < N else { XCTAssertEqual(c[e], c0[e], "cell (\(i), \(j)) outside c written"); continue }
                    var sum = 0.0, mag = 0.0
                    for t in 0..<T {
                        let p = Double(a[i * lda + t]) * Double(b[j * ldb + t])
                        sum += p; mag += abs(p)
                    }
                    if accumulate { sum += Double(c0[e]); mag += abs(Double(c0[e])) }
                    // Each lane sums T/8 products, then 3 additions join the lanes (and one the
                    // old value): at most T/8 + 4 roundings of 2^-24 relative to Σ|terms|.
                    let bound = Double(T / 8 + 4) * 0x1p-24
                    let err = abs(Double(c[e]) - sum) / max(mag, 1e-30)
                    XCTAssertLessThan(err, bound, "M \(M) N \(N) T \(T) cell (\(i), \(j))")
                    worst = max(worst, err / bound)
                }
            }
        }
        print("WinogradDWGemmTests: worst error / bound = \(worst)")
    }
}
