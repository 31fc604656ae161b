import MoCoTensor
import MoCoComm

/// OpenBLAS sgemm throughput measured in the same run as a benchmark, so ratios to it are
/// immune to the machine's load and clock of the moment.
public enum SgemmPeak {
    /// Best GFLOP/s over `repeats` of C[m, n] = A[m, k] @ B[k, n] (2mnk FLOPs) on `threads`
    /// engine workers.
    public static func gflops(m: Int, n: Int, k: Int, repeats: Int = 5, threads: Int = 1) -> Double {
        let a = FloatBuffer(count: m * k), b = FloatBuffer(count: k * n), c = FloatBuffer(count: m * n)
        var rng = Xoshiro(seed: 1)
        for i in 0..<a.count { a.ptr[i] = rng.uniform(-1, 1) }
        for i in 0..<b.count { b.ptr[i] = rng.uniform(-1, 1) }
        BLAS.sgemm(m: m, n: n, k: k, a: a.ptr, lda: k, b: b.ptr, ldb: n, c: c.ptr, ldc: n, threads: threads)
        var best = Double.infinity
        for _ in 0..<repeats {
            let watch = Stopwatch()
            BLAS.sgemm(m: m, n: n, k: k, a: a.ptr, lda: k, b: b.ptr, ldb: n, c: c.ptr, ldc: n, threads: threads)
            best = min(best, watch.elapsed)
        }
        return 2.0 * Double(m) * Double(n) * Double(k) / best / 1e9
    }

    /// Large square sgemm (2048^3): the GEMM engine's practical peak with `threads` workers.
    public static func large(threads: Int) -> Double { gflops(m: 2048, n: 2048, k: 2048, repeats: 4, threads: threads) }
}

/// Median of a non-empty list.
func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
