import CBLAS

/// Thin wrappers over OpenBLAS's CBLAS, row-major throughout.
public enum BLAS {
    /// C[M, N] = alpha * op(A) @ op(B) + beta * C, row-major with leading dimensions.
    /// A: [M, K] (or [K, M] if transA), B: [K, N] (or [N, K] if transB).
    @inline(__always)
    public static func sgemm(transA: Bool = false, transB: Bool = false,
                             m: Int, n: Int, k: Int, alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
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

    /// Threads OpenBLAS uses (set once at start-up: one per rank when ranks fill the cores).
    /// Setting it also sets the engine's own workers (`Parallel.threads`).
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set {
            openblas_set_num_threads(Int32(newValue))
            Parallel.threads = max(1, newValue)
        }
    }
}
