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
    /// Workers the pass is split over (contiguous ranges; elementwise, so the same bits for any count).
    let threads: Int

    public init(_ store: ParameterStore, momentum: Float, weightDecay: Float, threads: Int = 1) {
        precondition(store.withGradients, "SGD needs a store with gradients")
        self.store = store; self.momentum = momentum; self.weightDecay = weightDecay
        self.threads = max(1, threads)
        velocity = FloatBuffer(count: store.count)
    }

    /// w: [P], g: [P], v: [P] -> w, v updated in place
    public func step(lr: Float) {
        let w = store.values.ptr, g = store.grads.ptr, v = velocity.ptr
        let wd = weightDecay, mu = momentum
        let n = store.count
        let first = !hasVelocity
        Parallel.forRanges(n, threads: threads, minimum: 1 << 16) { r in
            if first {
                for i in r {
                    let d = g[i] + wd * w[i]
                    v[i] = d
                    w[i] -= lr * d
                }
            } else {
                for i in r {
                    let d = g[i] + wd * w[i]
                    let vi = mu * v[i] + d
                    v[i] = vi
                    w[i] -= lr * vi
                }
            }
        }
        hasVelocity = true
    }
}
