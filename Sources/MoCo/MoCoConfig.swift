import MoCoLayers
import MoCoOptim

/// The hyperparameters of one MoCo step (He et al. 2020, Algorithm 1; Chen et al. 2020 for v2),
/// one name per value. Nested in `TrainConfig` as `moco`; `MoCoModel` takes it as it is.
public struct MoCoConfig: Codable, Equatable, Sendable {
    /// Where the negatives come from: queue, memory bank or the batch (`Mechanism`).
    public var mechanism: Mechanism = .moco
    /// InfoNCE or InstDisc's NCE (`ContrastLoss`).
    public var loss: ContrastLoss = .infonce
    // Encoders
    public var architecture: Architecture = .resnet20
    public var head: HeadKind = .mlp
    /// The convolutions' initial weights (`--init`; `InitScheme.default`).
    public var initialization: InitScheme = .default
    /// Dimension of the projection (the keys and queries).
    public var dim = 128
    /// Hidden width of the `mlp-bn` projector and MoCo v3's predictor (nil: 4 x the backbone's
    /// feature width).
    public var mlpDim: Int? = nil
    // Contrast
    /// K, the number of negatives per query: the queue's length (moco) or the bank entries
    /// drawn per query (memory-bank). End-to-end's negatives are the global batch instead.
    public var queueSize = 4096
    /// m_b of the memory bank's update v ← normalize(m_b·v + (1 − m_b)·q) (Wu et al. 2018, sec. 3.2).
    public var bankMomentum: Float = 0.5
    /// m of the key encoder's update θ_k ← m·θ_k + (1 − m)·θ_q.
    public var momentum: Float = 0.99
    /// Raise m from `momentum` to 1 by a half cosine over the run (MoCo v3's `--moco-m-cos`).
    public var momentumCosine = false
    /// T of the softmax over [q·k₊, q·queue] / T.
    public var temperature: Float = 0.2
    /// ctr(q1, k2) + ctr(q2, k1) (MoCo CIFAR demo; Chen, Xie, He 2021, eq. 2).
    public var symmetric = false
    // BatchNorm
    /// Shuffle the key batch across ranks before the key encoder (He et al. 2020, sec. 3.3).
    public var shuffleBN = true
    /// BatchNorm splits per rank (1 = plain BN over the rank's batch).
    public var bnSplits = 1
    /// Synchronise the query encoder's BatchNorm statistics across ranks.
    public var syncBN = false
    // Optimizer (the lr comes from the schedule, step by step)
    /// SGD, or LARS for large global batches (`OptimizerKind`).
    public var optimizer: OptimizerKind = .sgd
    public var sgdMomentum: Float = 0.9
    public var weightDecay: Float = 5e-4
    /// Floats per gradient-allreduce bucket, started during the backward pass (`GradientBuckets`).
    /// Changes results only in rounding: every gradient is the sum of the ranks' gradients, but a
    /// ring allreduce adds the W terms of an element starting at a rank that depends on the
    /// element's position in its bucket.
    public var bucketFloats = 1 << 18

    public init() {}
}

extension MoCoConfig {
    /// Reads every field that is present and keeps the default of any that is not, so that
    /// configurations written before a field existed still read (with the behaviour of then).
    public init(from decoder: Decoder) throws {
        self.init()
        // Before the scheme was recorded every run started from torchvision's.
        initialization = .unrecorded
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func read<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
            if let v = try c.decodeIfPresent(T.self, forKey: key) { value = v }
        }
        try read(.mechanism, &mechanism); try read(.loss, &loss); try read(.bankMomentum, &bankMomentum)
        try read(.architecture, &architecture); try read(.head, &head); try read(.initialization, &initialization)
        try read(.dim, &dim); try read(.queueSize, &queueSize); try read(.momentum, &momentum)
        try read(.mlpDim, &mlpDim); try read(.momentumCosine, &momentumCosine)
        try read(.temperature, &temperature); try read(.symmetric, &symmetric); try read(.shuffleBN, &shuffleBN)
        try read(.bnSplits, &bnSplits); try read(.syncBN, &syncBN); try read(.sgdMomentum, &sgdMomentum)
        try read(.optimizer, &optimizer); try read(.weightDecay, &weightDecay); try read(.bucketFloats, &bucketFloats)
    }
}
