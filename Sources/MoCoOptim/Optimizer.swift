import MoCoTensor

/// `--optimizer`: the update rule of the trained parameters.
public enum OptimizerKind: String, CaseIterable, Sendable, Codable {
    /// SGD with momentum and weight decay (`SGD`).
    case sgd
    /// LARS with MoCo v3's exclusions (`LARS`), for large global batches.
    case lars
}

/// An optimizer over one `ParameterStore`'s flat values and gradients, with one momentum buffer
/// of the same layout (saved in checkpoints as `optimizer.momentum_buffer.<name>`).
public protocol Optimizer: AnyObject {
    var velocity: FloatBuffer { get }
    /// Whether `velocity` holds a value yet (SGD initialises it with the first update).
    var hasVelocity: Bool { get set }
    var weightDecay: Float { get }
    func step(lr: Float)
}

extension SGD: Optimizer {}

/// The optimizer `kind` names over `store`.
/// `threads`: workers SGD's elementwise pass is split over (LARS runs its per-tensor norms on one).
public func makeOptimizer(_ kind: OptimizerKind, _ store: ParameterStore, momentum: Float, weightDecay: Float,
                          threads: Int = 1) -> Optimizer {
    switch kind {
    case .sgd: return SGD(store, momentum: momentum, weightDecay: weightDecay, threads: threads)
    case .lars: return LARS(store, momentum: momentum, weightDecay: weightDecay)
    }
}
