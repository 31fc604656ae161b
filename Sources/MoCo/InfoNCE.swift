import MoCoTensor
import MoCoLayers

/// The InfoNCE loss of MoCo (He et al. 2020, eq. 1; van den Oord et al. 2018):
///   logits_i = [q_i·k_i, q_i·queue_1, …, q_i·queue_K] / T,   L = −(1/N) Σ_i log softmax(logits_i)_0
/// Gradient with respect to q (keys and queue receive none):
///   dq_i = (dZ_i0 · k_i + Σ_j dZ_ij · queue_j) / T,  dZ = (softmax − e_0) / N.
public final class InfoNCE {
    public let dim: Int, queueSize: Int
    public private(set) var rows = 0
    /// logits: [N, 1 + K]
    public private(set) var logits = FloatBuffer(count: 0)
    public private(set) var dLogits = FloatBuffer(count: 0)
    /// dQ: [N, dim]
    public private(set) var dQ = FloatBuffer(count: 0)

    /// Engine workers of the two GEMMs with the queue.
    public let threads: Int

    public init(dim: Int, queueSize: Int, threads: Int = 1) {
        self.dim = dim; self.queueSize = queueSize; self.threads = max(1, threads)
    }

    public func plan(rows n: Int) {
        if n == rows { return }
        logits = FloatBuffer(count: n * (1 + queueSize))
        dLogits = FloatBuffer(count: n * (1 + queueSize))
        dQ = FloatBuffer(count: n * dim)
        rows = n
    }

    /// q: [N, dim], k: [N, dim], queue: [dim, K] -> (loss, top-1 % of the positive); dQ: [N, dim]
    public func forwardBackward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, queue: UnsafePointer<Float>,
                                temperature T: Float) -> (loss: Double, acc1: Double) {
        forwardBackward(q: q, k: k, queue: queue, temperature: T) { logits, rows, classes, dLogits in
            CrossEntropy.forwardBackward(logits: logits, rows: rows, classes: classes, targets: { _ in 0 }, dLogits: dLogits,
                                         threads: threads)
        }
    }

    /// The same logits and dQ with another objective over them (InstDisc's NCE, `NCE`):
    /// `criterion(logits [N, 1 + K], N, 1 + K, dLogits)` -> (loss, top-1 %), filling dLogits.
    public func forwardBackward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, queue: UnsafePointer<Float>,
                                temperature T: Float,
                                criterion: (UnsafePointer<Float>, Int, Int, UnsafeMutablePointer<Float>) throws -> (loss: Double, acc1: Double))
        rethrows -> (loss: Double, acc1: Double) {
        let n = rows, K = queueSize, ld = 1 + K
        let invT = 1 / T
        // negatives: logits[:, 1:] = q @ queue / T
        BLAS.sgemm(m: n, n: K, k: dim, alpha: invT, a: q, lda: dim, b: queue, ldb: K, c: logits.ptr + 1, ldc: ld, threads: threads)
        for i in 0..<n {
            var s: Float = 0
            for d in 0..<dim { s += q[i * dim + d] * k[i * dim + d] }
            logits.ptr[i * ld] = s * invT
        }
        let result = try criterion(UnsafePointer(logits.ptr), n, ld, dLogits.ptr)
        // dQ = dZ[:, 1:] @ queue^T / T + dZ[:, 0] · k / T
        BLAS.sgemm(transB: true, m: n, n: dim, k: K, alpha: invT, a: dLogits.ptr + 1, lda: ld, b: queue, ldb: K,
                   c: dQ.ptr, ldc: dim, threads: threads)
        for i in 0..<n {
            let g = dLogits.ptr[i * ld] * invT
            for d in 0..<dim { dQ.ptr[i * dim + d] += g * k[i * dim + d] }
        }
        return result
    }
}
