import Foundation
import MoCoTensor

/// Instance Discrimination's memory bank (Wu et al. 2018, sec. 3.2): one unit-length feature per
/// training image, v: [N, dim]. Negatives are bank rows drawn uniformly (with replacement, as
/// the noise distribution P_n = 1/N); after each step, the rows of the batch's images move
/// towards the new features: v_i ← normalize(m_b·v_i + (1 − m_b)·f_i).
///
/// Initialised as the authors' code does: every component U(−a, a) with a = 1/sqrt(dim/3), i.e.
/// variance 1/dim, so rows start with norm ≈ 1 in random directions (not normalised).
public final class MemoryBank {
    public let count: Int, dim: Int
    /// features: [N, dim]
    public let features: FloatBuffer
    /// Per-worker partial gradients of `gradient`.
    private var partials = FloatBuffer(count: 0)

    public init(count: Int, dim: Int, seed: UInt64) {
        precondition(count > 0 && dim > 0)
        self.count = count; self.dim = dim
        features = FloatBuffer(count: count * dim)
        var rng = Xoshiro(seed: seed, stream: [0x4241_4E4B])   // "BANK"
        let a = 1 / (Float(dim) / 3).squareRoot()
        for i in 0..<(count * dim) { features.ptr[i] = rng.uniform(-a, a) }
    }

    /// Draws K rows per sample, uniformly with replacement, as a pure function of the seed, the
    /// global step and the sample's position in the global batch (so any number of ranks draws
    /// the same rows for the same sample).
    /// -> rows: [n, K] for the samples at global positions first..<first + n
    public func sampleNegatives(seed: UInt64, step: Int, firstPosition first: Int, samples n: Int, perSample K: Int,
                                into rows: UnsafeMutablePointer<Int32>) {
        for i in 0..<n {
            var rng = Xoshiro(seed: seed, stream: [0x4E45_47, UInt64(step), UInt64(first + i)])   // "NEG"
            let r = rows + i * K
            for j in 0..<K { r[j] = Int32(rng.below(count)) }
        }
    }

    /// A step's draws grouped by bank row: the slots (flat indices i·(1 + K) + j into the
    /// logits) that read row r are `slots[start[r] ..< start[r + 1]]`, in increasing order.
    /// n·(1 + K) draws from N rows repeat rows (about n·K/N times each: 9 for the default
    /// 256 x 4096 from 60k), so both passes below walk the bank once, in address order, instead
    /// of reading n·(1 + K) random rows: the difference between streaming the bank and waiting on
    /// memory for every row once the bank outgrows the caches.
    public struct Grouping {
        public private(set) var start: [Int32] = []
        public private(set) var slots: [Int32] = []
        /// Next free slot of each row while filling (kept to avoid a per-step allocation).
        private var cursor: [Int32] = []

        public init() {}

        /// positives: [n], negatives: [n, K] -> the grouping (a counting sort by row)
        public mutating func build(positives: UnsafePointer<Int32>, negatives: UnsafePointer<Int32>, rows n: Int,
                                   perSample K: Int, bankRows N: Int) {
            let total = n * (1 + K)
            if start.count != N + 1 { start = .init(repeating: 0, count: N + 1) }
            if slots.count != total { slots = .init(repeating: 0, count: total) }
            if cursor.count != N { cursor = .init(repeating: 0, count: N) }
            start.withUnsafeMutableBufferPointer { st in
                slots.withUnsafeMutableBufferPointer { sl in
                    cursor.withUnsafeMutableBufferPointer { cu in
                        let st = st.baseAddress!, sl = sl.baseAddress!, cu = cu.baseAddress!
                        st.update(repeating: 0, count: N + 1)
                        func row(_ e: Int) -> Int {
                            let i = e / (1 + K), j = e % (1 + K)
                            return Int(j == 0 ? positives[i] : negatives[i * K + j - 1])
                        }
                        for e in 0..<total { st[row(e) + 1] += 1 }
                        for r in 0..<N { st[r + 1] += st[r] }
                        cu.update(from: st, count: N)
                        for e in 0..<total { let r = row(e); sl[Int(cu[r])] = Int32(e); cu[r] += 1 }
                    }
                }
            }
        }
    }

    /// Logits against the positive row and the K sampled rows:
    /// q: [n, dim], grouping of the draws -> logits: [n, 1 + K] = [q·v_pos, q·v_neg] / T
    public func logits(q: UnsafePointer<Float>, grouping g: Grouping, rows n: Int, perSample K: Int, invT: Float,
                       into logits: UnsafeMutablePointer<Float>, threads: Int) {
        let D = dim, v = UnsafePointer(features.ptr), N = count
        g.start.withUnsafeBufferPointer { st in
            g.slots.withUnsafeBufferPointer { sl in
                let st = st.baseAddress!, sl = sl.baseAddress!
                Parallel.forRanges(N, threads: threads) { rows in
                    for r in rows {
                        let vr = v + r * D
                        for e in Int(st[r])..<Int(st[r + 1]) {
                            let slot = Int(sl[e])
                            logits[slot] = dot(q + (slot / (1 + K)) * D, vr, D) * invT
                        }
                    }
                }
            }
        }
    }

    /// The gradient of those logits with respect to q (the bank is a constant):
    /// dLogits: [n, 1 + K] -> dQ: [n, dim] = (dL_i0·v_pos + Σ_j dL_ij·v_neg_j) / T.
    /// Each worker sums over its share of the bank into its own partial dQ; the partials are
    /// added in worker order (reproducible for a given thread count).
    public func gradient(dLogits: UnsafePointer<Float>, grouping g: Grouping, rows n: Int, perSample K: Int, invT: Float,
                         into dQ: UnsafeMutablePointer<Float>, threads: Int) {
        let D = dim, v = UnsafePointer(features.ptr), N = count
        let parts = max(1, min(threads, N))
        if partials.count < parts * n * D { partials = FloatBuffer(count: parts * n * D) }
        let partial = partials.ptr
        g.start.withUnsafeBufferPointer { st in
            g.slots.withUnsafeBufferPointer { sl in
                let st = st.baseAddress!, sl = sl.baseAddress!
                Parallel.run(parts) { t in
                    let out = partial + t * n * D
                    out.update(repeating: 0, count: n * D)
                    for r in Parallel.partition(N, parts: parts, t) {
                        let vr = v + r * D
                        for e in Int(st[r])..<Int(st[r + 1]) {
                            let slot = Int(sl[e])
                            axpy(dLogits[slot] * invT, vr, out + (slot / (1 + K)) * D, D)
                        }
                    }
                }
            }
        }
        dQ.update(from: partial, count: n * D)
        for t in 1..<parts { BLAS.axpy(n: n * D, alpha: 1, x: partial + t * n * D, y: dQ) }
    }

    /// v_i ← normalize(m·v_i + (1 − m)·f_i) for each (index, feature) pair, in order.
    /// indices: [B], f: [B, dim]
    public func update(indices: UnsafePointer<Int64>, features f: UnsafePointer<Float>, count B: Int, momentum m: Float) {
        let D = dim
        for b in 0..<B {
            let row = features.ptr + Int(indices[b]) * D, x = f + b * D
            var s = 0.0
            for d in 0..<D {
                let u = m * row[d] + (1 - m) * x[d]
                row[d] = u
                s += Double(u) * Double(u)
            }
            let inv = Float(1 / max(s.squareRoot(), 1e-12))
            for d in 0..<D { row[d] *= inv }
        }
    }

    /// Restores saved values [N, dim].
    public func restore(values: [Float]) {
        precondition(values.count == count * dim)
        values.withUnsafeBufferPointer { features.ptr.update(from: $0.baseAddress!, count: count * dim) }
    }
}

/// x: [D], y: [D] -> Σ x·y (8 Float lanes, then the tail)
@inline(__always) private func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD8<Float>()
    var i = 0
    while i + 8 <= n {
        acc += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            * UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
        i += 8
    }
    var s = acc.sum()
    while i < n { s += x[i] * y[i]; i += 1 }
    return s
}

/// y[D] += a·x[D]
@inline(__always) private func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    let av = SIMD8<Float>(repeating: a)
    while i + 8 <= n {
        let p = UnsafeMutableRawPointer(y + i)
        p.storeBytes(of: p.loadUnaligned(as: SIMD8<Float>.self) + av * UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self),
                     as: SIMD8<Float>.self)
        i += 8
    }
    while i < n { y[i] += a * x[i]; i += 1 }
}
