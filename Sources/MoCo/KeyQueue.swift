import MoCoTensor

/// MoCo's dictionary (He et al. 2020, sec. 3.2): a FIFO queue of K unit-length keys stored as
/// columns of a [dim, K] matrix, so the negative logits are one GEMM q[N, dim] @ queue[dim, K].
///
/// Each step the newest keys overwrite the oldest: queue[:, ptr + i] = k_i, ptr = (ptr + N) mod K.
/// Unlike the official implementation, N need not divide K: writes wrap around.
public final class KeyQueue {
    public let dim: Int, size: Int
    /// queue: [dim, K]
    public let keys: FloatBuffer
    public private(set) var pointer = 0

    /// A queue of random unit columns (randn then normalised along dim, as the official code).
    public init(dim: Int, size: Int, seed: UInt64) {
        precondition(dim > 0 && size > 0)
        self.dim = dim; self.size = size
        keys = FloatBuffer(count: dim * size)
        var rng = Xoshiro(seed: seed, stream: [0x5155_4555])
        for i in 0..<(dim * size) { keys.ptr[i] = rng.normal() }
        for j in 0..<size {
            var s: Double = 0
            for d in 0..<dim { let v = Double(keys.ptr[d * size + j]); s += v * v }
            let inv = Float(1 / max(s.squareRoot(), 1e-12))
            for d in 0..<dim { keys.ptr[d * size + j] *= inv }
        }
    }

    /// Restores a saved state (values [dim, K] and pointer).
    public func restore(values: [Float], pointer: Int) {
        precondition(values.count == dim * size && pointer >= 0 && pointer < size)
        values.withUnsafeBufferPointer { keys.ptr.update(from: $0.baseAddress!, count: dim * size) }
        self.pointer = pointer
    }

    /// k: [N, dim] (row-major, N may exceed K: only the last K survive) -> queue columns.
    public func enqueue(_ k: UnsafePointer<Float>, count n: Int) {
        for i in 0..<n {
            let col = (pointer + i) % size
            let row = k + i * dim
            for d in 0..<dim { keys.ptr[d * size + col] = row[d] }
        }
        pointer = (pointer + n) % size
    }
}
