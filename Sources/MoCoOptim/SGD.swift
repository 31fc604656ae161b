import MoCoTensor

/// Stochastic gradient descent with momentum and weight decay, PyTorch's semantics
/// (`torch.optim.SGD`, dampening 0, no Nesterov):
///   d = g + wd·w;  v = μ·v + d  (v = d on the first step);  w -= lr·v
/// One pass over the contiguous parameter and gradient buffers of a `ParameterStore`.
public final class SGD {
    public var momentum: Float
    public var weightDecay: Float
    /// Momentum buffer, same layout as the parameters.
    public let velocity: FloatBuffer
    /// Whether the momentum buffer holds a value (PyTorch initialises it with d on step 1).
    public var hasVelocity = false
    let store: ParameterStore

    public init(_ store: ParameterStore, momentum: Float, weightDecay: Float) {
        precondition(store.withGradients, "SGD needs a store with gradients")
        self.store = store; self.momentum = momentum; self.weightDecay = weightDecay
        velocity = FloatBuffer(count: store.count)
    }

    /// w: [P], g: [P], v: [P] -> w, v updated in place
    public func step(lr: Float) {
        let w = store.values.ptr, g = store.grads.ptr, v = velocity.ptr
        let wd = weightDecay, mu = momentum
        let n = store.count
        if hasVelocity {
            for i in 0..<n {
                let d = g[i] + wd * w[i]
                let vi = mu * v[i] + d
                v[i] = vi
                w[i] -= lr * vi
            }
        } else {
            for i in 0..<n {
                let d = g[i] + wd * w[i]
                v[i] = d
                w[i] -= lr * d
            }
            hasVelocity = true
        }
    }
}
