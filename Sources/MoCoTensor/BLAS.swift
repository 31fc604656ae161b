import CBLAS

/// Thin wrappers over OpenBLAS's CBLAS, row-major throughout.
public enum BLAS {
    /// C[M, N] = alpha * op(A) @ op(B) + beta * C, row-major with leading dimensions.
    /// A: [M, K] (or [K, M] if transA), B: [K, N] (or [N, K] if transB).
    /// `threads` > 1 splits a large product over that many engine workers (outside a
    /// `Parallel` region); 1 makes one OpenBLAS call.
    @inline(__always)
    public static func sgemm(transA: Bool = false, transB: Bool = false,
                             m: Int, n: Int, k: Int, alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, threads T: Int = 1) {
        if m == 0 || n == 0 { return }
        let work = m * n * k
        if T > 1 && !Parallel.inRegion && work >= 1 << 20 {
            // Split C over the workers (rows when M >= N, else columns) in blocks of 16; every
            // element is still one single-threaded OpenBLAS dot product, whatever the split.
            let splitRows = m >= n
            let blocks = ((splitRows ? m : n) + 15) / 16
            let parts = min(T, blocks)
            Parallel.run(parts) { t in
                let r = Parallel.partition(blocks, parts: parts, t)
                let lo = r.lowerBound * 16, hi = min(splitRows ? m : n, r.upperBound * 16)
                if hi <= lo { return }
                if splitRows {
                    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                                Int32(hi - lo), Int32(n), Int32(k), alpha, transA ? a + lo : a + lo * lda, Int32(lda),
                                b, Int32(ldb), beta, c + lo * ldc, Int32(ldc))
                } else {
                    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                                Int32(m), Int32(hi - lo), Int32(k), alpha, a, Int32(lda),
                                transB ? b + lo * ldb : b + lo, Int32(ldb), beta, c + lo, Int32(ldc))
                }
            }
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                    beta, c, Int32(ldc))
    }

    /// y += alpha * x over n floats.
    @inline(__always)
    public static func axpy(n: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        cblas_saxpy(Int32(n), alpha, x, 1, y, 1)
    }

    /// x *= alpha over n floats.
    @inline(__always)
    public static func scal(n: Int, alpha: Float, x: UnsafeMutablePointer<Float>) {
        cblas_sscal(Int32(n), alpha, x, 1)
    }

    /// Runs OpenBLAS itself on one thread, once at start-up: the engine splits large products
    /// over its own workers (`sgemm(threads:)`) and the convolutions split their batch.
    /// (OpenBLAS's own idle workers spin on sched_yield between calls, which cost ~13% of a
    /// ResNet-20 step when they alternated with the engine's workers.)
    public static func useEngineThreads() { openblas_set_num_threads(1) }
}
