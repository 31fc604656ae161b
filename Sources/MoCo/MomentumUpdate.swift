import MoCoTensor

/// The momentum (exponential moving average) update of the key encoder (He et al. 2020, eq. 2):
///   θ_k ← m·θ_k + (1 − m)·θ_q
/// over the parameters only (BatchNorm running statistics are the key encoder's own), as one
/// pass over the two contiguous parameter buffers. A query encoder may hold more parameters
/// after the key's (MoCo v3's predictor, registered last): only the common prefix is averaged.
/// key: [P], query: [P'] (P' ≥ P) -> key updated in place
/// Split over `threads` workers in contiguous ranges (elementwise: the same bits for any count).
public func momentumUpdate(key: ParameterStore, query: ParameterStore, m: Float, threads: Int = 1) {
    precondition(key.count <= query.count, "momentum update: encoders differ")
    let k = key.values.ptr, q = query.values.ptr
    let a = 1 - m
    Parallel.forRanges(key.count, threads: threads, minimum: 1 << 16) { r in
        for i in r { k[i] = m * k[i] + a * q[i] }
    }
}
