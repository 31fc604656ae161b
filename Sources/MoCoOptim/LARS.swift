import MoCoTensor

/// Layer-wise adaptive rate scaling (You, Gitman, Ginsburg 2017) as MoCo v3 uses it (Chen, Xie,
/// He 2021, sec. 4; the official implementation's optimizer): for every parameter tensor w with
/// more than one dimension (weights of convolutions and linear layers),
///   d = g + wd·w,   d ← d · η·‖w‖ / ‖d‖   (η = trust coefficient; 1 if either norm is 0)
/// and for biases and BatchNorm's scale and shift (one dimension) d = g: neither weight decay
/// nor adaptation. Then v = μ·v + d (v starts at 0), w ← w − lr·v.
public final class LARS {
    public var momentum: Float
    public var weightDecay: Float
    /// η, the trust coefficient.
    public let trust: Float
    public let velocity: FloatBuffer
    /// LARS's buffer starts at zero, so it always "has" a value.
    public var hasVelocity = true
    let store: ParameterStore

    public init(_ store: ParameterStore, momentum: Float, weightDecay: Float, trust: Float = 0.001) {
        precondition(store.withGradients, "LARS needs a store with gradients")
        self.store = store; self.momentum = momentum; self.weightDecay = weightDecay; self.trust = trust
        velocity = FloatBuffer(count: store.count)
    }

    /// w: [P], g: [P], v: [P] -> w, v updated in place, tensor by tensor
    public func step(lr: Float) {
        let w = store.values.ptr, g = store.grads.ptr, v = velocity.ptr
        let mu = momentum, wd = weightDecay
        for e in store.entries {
            let o = e.offset, n = e.count
            var scale: Float = 1, decay: Float = 0
            if e.shape.count > 1 {
                decay = wd
                var ww = 0.0, dd = 0.0
                for i in o..<(o + n) {
                    let d = g[i] + wd * w[i]
                    ww += Double(w[i]) * Double(w[i]); dd += Double(d) * Double(d)
                }
                if ww > 0 && dd > 0 { scale = Float(Double(trust) * ww.squareRoot() / dd.squareRoot()) }
            }
            for i in o..<(o + n) {
                let d = (g[i] + decay * w[i]) * scale
                let vi = mu * v[i] + d
                v[i] = vi
                w[i] -= lr * vi
            }
        }
    }
}

extension LARS: Optimizer {}
