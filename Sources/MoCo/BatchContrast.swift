import MoCoTensor
import MoCoLayers

/// Contrast against the keys of the whole global batch (He et al. 2020, end-to-end; Chen, Xie,
/// He 2021, MoCo v3): this rank's queries q [n, D] against every rank's keys k [B, D] (gathered
/// in rank order), the positive of query i being key `offset + i`, the key of the same image:
///
///   logits = q·kᵀ / T: [n, B],   L = CE(logits, offset + i)   (mean over this rank's n rows)
///   dq = dZ·k / T: [n, D],       dk = dZᵀ·q / T: [B, D]       (dZ = (softmax − onehot) / n)
public final class BatchContrast {
    public let dim: Int
    public let threads: Int
    public private(set) var rows = 0, keys = 0
    /// logits: [n, B]
    public private(set) var logits = FloatBuffer(count: 0)
    public private(set) var dLogits = FloatBuffer(count: 0)
    /// dQ: [n, D], dK: [B, D]
    public private(set) var dQ = FloatBuffer(count: 0)
    public private(set) var dK = FloatBuffer(count: 0)

    public init(dim: Int, threads: Int = 1) { self.dim = dim; self.threads = max(1, threads) }

    public func plan(rows n: Int, keys B: Int) {
        if n == rows && B == keys { return }
        logits = FloatBuffer(count: n * B); dLogits = FloatBuffer(count: n * B)
        dQ = FloatBuffer(count: n * dim); dK = FloatBuffer(count: B * dim)
        rows = n; keys = B
    }

    /// q: [n, D], k: [B, D] -> (mean loss, top-1 % of the positive); dQ, and dK when
    /// `keyGradient` (end-to-end; MoCo v3's keys take none).
    public func forwardBackward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, offset: Int, temperature T: Float,
                                keyGradient: Bool) -> (loss: Double, acc1: Double) {
        let n = rows, B = keys, D = dim, invT = 1 / T
        // logits = q @ k^T / T
        BLAS.sgemm(transB: true, m: n, n: B, k: D, alpha: invT, a: q, lda: D, b: k, ldb: D, c: logits.ptr, ldc: B, threads: threads)
        let r = CrossEntropy.forwardBackward(logits: logits.ptr, rows: n, classes: B, targets: { offset + $0 },
                                             dLogits: dLogits.ptr, threads: threads)
        // dQ = dZ @ k / T
        BLAS.sgemm(m: n, n: D, k: B, alpha: invT, a: dLogits.ptr, lda: B, b: k, ldb: D, c: dQ.ptr, ldc: D, threads: threads)
        if keyGradient {
            // dK = dZ^T @ q / T
            BLAS.sgemm(transA: true, m: B, n: D, k: n, alpha: invT, a: dLogits.ptr, lda: B, b: q, ldb: D, c: dK.ptr, ldc: D,
                       threads: threads)
        }
        return r
    }
}
