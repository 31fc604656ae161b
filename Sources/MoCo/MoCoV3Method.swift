import Foundation
import MoCoTensor
import MoCoLayers
import MoCoOptim
import MoCoComm
import SafeTensors

/// MoCo v3 (Chen, Xie, He 2021, "An Empirical Study of Training Self-Supervised Vision
/// Transformers", Algorithm 1) for ResNets: a query encoder with projector and predictor, a
/// momentum key encoder with the projector only, no queue: the negatives are the keys of the
/// global batch.
///
/// One step, in the order the code runs it:
///  1. m = 1 − (1 − m₀)·(1 + cos(π·t/T_run))/2 with `--moco-m-cos` (else m₀);
///     θ_k ← m·θ_k + (1 − m)·θ_q over the backbone and projector
///  2. k₁ = normalize(f_k(x₁)), k₂ = normalize(f_k(x₂)), all-gathered in rank order
///  3. q₁ = normalize(g(f_q(x₁)));  L₁ = ctr(q₁, k₂);  backward (gradients kept)
///  4. q₂ = normalize(g(f_q(x₂)));  L₂ = ctr(q₂, k₁);  backward, summed with 3's
///     ctr(q, k) = CE(q·k_allᵀ / T, rank·n + i) · 2T                 (`BatchContrast`)
///  5. gradients averaged across ranks; LARS (or SGD) step on the query encoder and predictor
/// The paper computes q before the momentum update and k; neither changes a value (q does not
/// read θ_k, and θ_q is the same before this step's optimizer update either way).
public final class MoCoV3Method: ContrastiveMethod {
    public let config: MoCoConfig
    public let engine: EngineConfig
    public let comm: Communicator
    /// Where each step's phases are recorded (`--timeline`); nil: nowhere.
    public var timeline: Timeline?
    public let query: Encoder
    public let key: Encoder
    public let optimizer: Optimizer
    let qNorm = L2Normalize(), kNorm = L2Normalize()
    let contrast: BatchContrast
    let buckets: GradientBuckets
    private var k1 = FloatBuffer(count: 0), k2 = FloatBuffer(count: 0)
    private var k1All = FloatBuffer(count: 0), k2All = FloatBuffer(count: 0)
    private var dQ = FloatBuffer(count: 0), savedGrads = FloatBuffer(count: 0)
    public private(set) var localBatch = 0
    private var imageShape = (c: 0, h: 0, w: 0)
    /// The key momentum of the last step.
    public private(set) var lastMomentum: Float = 0

    public init(config: MoCoConfig, inChannels: Int, engine: EngineConfig = EngineConfig(), seed: UInt64, comm: Communicator) {
        self.config = config; self.engine = engine; self.comm = comm
        query = Encoder(architecture: config.architecture, head: config.head, inChannels: inChannels, dim: config.dim,
                        engine: engine, hidden: config.mlpDim, predictor: true)
        key = Encoder(architecture: config.architecture, head: config.head, inChannels: inChannels, dim: config.dim,
                      trainable: false, engine: engine, workspace: query.workspace, hidden: config.mlpDim)
        query.initialize(seed: seed, scheme: config.initialization)
        key.copyState(from: query)
        query.bnSplits = config.bnSplits
        key.bnSplits = config.bnSplits
        if config.syncBN { query.setBatchStatReducer(CommStatReducer(comm: comm)) }
        optimizer = makeOptimizer(config.optimizer, query.params, momentum: config.sgdMomentum, weightDecay: config.weightDecay,
                                  threads: engine.threads)
        contrast = BatchContrast(dim: config.dim, threads: engine.threads)
        buckets = GradientBuckets(comm: comm, grads: query.params.grads.ptr, count: query.params.count,
                                  bucketFloats: config.bucketFloats)
    }

    public func plan(localBatch n: Int, channels c: Int, height h: Int, width w: Int) {
        if n == localBatch && (c, h, w) == imageShape { return }
        query.plan(batch: n, height: h, width: w, backward: true)
        key.plan(batch: n, height: h, width: w, backward: false, borrowing: query)
        qNorm.plan(rows: n, dim: config.dim, backward: true)
        kNorm.plan(rows: n, dim: config.dim, backward: false)
        contrast.plan(rows: n, keys: comm.size * n)
        let D = config.dim
        k1 = FloatBuffer(count: n * D); k2 = FloatBuffer(count: n * D)
        k1All = FloatBuffer(count: comm.size * n * D); k2All = FloatBuffer(count: comm.size * n * D)
        dQ = FloatBuffer(count: n * D); savedGrads = FloatBuffer(count: query.params.count)
        localBatch = n; imageShape = (c, h, w)
    }

    /// m at fraction `progress` of the run: m₀, or m₀ raised to 1 by a half cosine (v3's `--moco-m-cos`).
    public static func momentum(base m0: Float, cosine: Bool, progress t: Double) -> Float {
        guard cosine else { return m0 }
        return Float(1 - (1 - Double(m0)) * 0.5 * (1 + cos(Double.pi * min(max(t, 0), 1))))
    }

    public func step(_ input: StepInput) throws -> StepResult {
        precondition(localBatch > 0, "MoCoV3Method.step before plan")
        var clock = PhaseClock(timeline: timeline)
        // 1. momentum update
        lastMomentum = Self.momentum(base: config.momentum, cosine: config.momentumCosine, progress: input.progress)
        momentumUpdate(key: key.params, query: query.params, m: lastMomentum, threads: engine.threads)
        // 2. keys of both crops, gathered from every rank
        try keys(input.imQ, into: k1, gathered: k1All)
        try keys(input.imK, into: k2, gathered: k2All)
        clock.lap(\.keyForward)
        // 3-4. ctr(q1, k2) + ctr(q2, k1)
        buckets.begin()
        let (l1, a1) = contrast(input.imQ, keys: k2All, clock: &clock)
        savedGrads.copy(from: query.params.grads)
        let (l2, a2) = contrast(input.imK, keys: k1All, clock: &clock)
        BLAS.axpy(n: query.params.count, alpha: 1, x: savedGrads.ptr, y: query.params.grads.ptr)
        // 5. average across ranks, optimizer step
        buckets.ready(from: 0)
        try buckets.finish()
        clock.lap(\.allreduceWait)
        optimizer.step(lr: input.lr)
        clock.lap(\.optimizer)
        return StepResult(loss: l1 + l2, acc1: (a1 + a2) / 2, timings: clock.timings, buckets: buckets.lastStarts)
    }

    /// crops: [n, C, H, W] -> keys: [n, D] (key encoder, batch statistics), gathered: [W·n, D]
    func keys(_ crops: UnsafePointer<Float>, into keys: FloatBuffer, gathered: FloatBuffer) throws {
        key.forward(crops, training: true)
        kNorm.forward(key.projection)
        keys.copy(from: kNorm.y)
        try comm.allgather(keys.ptr, count: localBatch * config.dim, into: gathered.ptr)
    }

    /// Query forward through the predictor, ctr against the gathered keys scaled by 2T, backward:
    /// gradients in `query.params.grads`.
    func contrast(_ crops: UnsafePointer<Float>, keys: FloatBuffer, clock: inout PhaseClock) -> (Double, Double) {
        let T = config.temperature
        query.forward(crops, training: true)
        qNorm.forward(query.projection)
        clock.lap(\.queryForward)
        let r = contrast.forwardBackward(q: qNorm.y.ptr, k: keys.ptr, offset: comm.rank * localBatch, temperature: T,
                                         keyGradient: false)
        dQ.copy(from: contrast.dQ)
        BLAS.scal(n: dQ.count, alpha: 2 * T, x: dQ.ptr)
        qNorm.backward(dQ.ptr)
        clock.lap(\.loss)
        query.backward(qNorm.dX.ptr)
        clock.lap(\.backward)
        return (r.loss * Double(2 * T), r.acc1)
    }

    /// Keys of the last step's first crops, [n, dim] (tests).
    var keysForTesting: [Float] { k1.array }

    // MARK: - State: the key encoder

    public func addState(to w: inout SafeTensorsWriter) { EncoderState.add(key, prefix: "encoder_k.", to: &w) }
    public func validateState(_ f: SafeTensorsFile) throws { try EncoderState.validate(key, in: f, prefix: "encoder_k.") }
    public func loadState(_ f: SafeTensorsFile) throws { try EncoderState.load(key, from: f, prefix: "encoder_k.") }

    public var sharedState: [(name: String, checksum: Double)] {
        [("query weights", Self.checksum(query.params.values.ptr, query.params.count)),
         ("key weights", Self.checksum(key.params.values.ptr, key.params.count))]
    }

    public func perturbSharedState() { key.params.values.ptr[0] += 1e-3 }
}
