import MoCoTensor
import MoCoLayers
import MoCoOptim
import MoCoComm
import SafeTensors

/// The end-to-end mechanism (He et al. 2020, Fig. 2a): one encoder produces queries and keys,
/// gradients flow through both, and the negatives are the keys of the other images of the
/// global batch (the dictionary is the batch, K = B − 1).
///
/// One step, in the order the code runs it:
///  1. k = normalize(f(shuffle(x_k))), unshuffled      (training mode; shuffle-BN as MoCo's keys)
///  2. q = normalize(f(x_q))
///  3. k_all = all-gather(k);  L = CE(q·k_allᵀ / T, rank·n + i)        (`BatchContrast`)
///  4. dk = reduce-scatter(dk_all)                      (the adjoint of the gather: each key's
///                                                       gradient from every rank's queries)
///  5. backward through both paths into one gradient; averaged across ranks
///  6. SGD step on θ
/// The key path runs on a second set of activations (`keyPath`, a copy of the encoder's state
/// taken each step), so both forwards are alive at the backward; its BatchNorm running
/// statistics are handed back before the query forward, so the encoder's statistics see the key
/// batch and then the query batch, as two calls of one PyTorch module would.
public final class EndToEndMethod: ContrastiveMethod {
    public let config: MoCoConfig
    public let engine: EngineConfig
    public let comm: Communicator
    /// Where each step's phases are recorded (`--timeline`); nil: nowhere.
    public var timeline: Timeline?
    public let query: Encoder
    /// The same encoder's second activation set (state copied from `query` every step).
    let keyPath: Encoder
    public let optimizer: Optimizer
    let qNorm = L2Normalize(), kNorm = L2Normalize()
    let contrast: BatchContrast
    let shuffleBN: ShuffleBN
    let buckets: GradientBuckets
    private var keysOwned = FloatBuffer(count: 0), gathered = FloatBuffer(count: 0)
    private var dKeysOwned = FloatBuffer(count: 0), dKeysShuffled = FloatBuffer(count: 0)
    public private(set) var localBatch = 0
    private var imageShape = (c: 0, h: 0, w: 0)

    public init(config: MoCoConfig, inChannels: Int, engine: EngineConfig = EngineConfig(), seed: UInt64, comm: Communicator) {
        self.config = config; self.engine = engine; self.comm = comm
        query = Encoder(architecture: config.architecture, head: config.head, inChannels: inChannels, dim: config.dim,
                        engine: engine)
        keyPath = Encoder(architecture: config.architecture, head: config.head, inChannels: inChannels, dim: config.dim,
                          engine: engine)
        query.initialize(seed: seed, scheme: config.initialization)
        query.bnSplits = config.bnSplits
        keyPath.bnSplits = config.bnSplits
        if config.syncBN {
            let r = CommStatReducer(comm: comm)
            query.setBatchStatReducer(r); keyPath.setBatchStatReducer(r)
        }
        optimizer = makeOptimizer(config.optimizer, query.params, momentum: config.sgdMomentum, weightDecay: config.weightDecay,
                                  threads: engine.threads)
        contrast = BatchContrast(dim: config.dim, threads: engine.threads)
        shuffleBN = ShuffleBN(comm: comm)
        buckets = GradientBuckets(comm: comm, grads: query.params.grads.ptr, count: query.params.count,
                                  bucketFloats: config.bucketFloats)
    }

    public func plan(localBatch n: Int, channels c: Int, height h: Int, width w: Int) {
        if n == localBatch && (c, h, w) == imageShape { return }
        query.plan(batch: n, height: h, width: w, backward: true)
        keyPath.plan(batch: n, height: h, width: w, backward: true)
        qNorm.plan(rows: n, dim: config.dim, backward: true)
        kNorm.plan(rows: n, dim: config.dim, backward: true)
        contrast.plan(rows: n, keys: comm.size * n)
        keysOwned = FloatBuffer(count: n * config.dim); gathered = FloatBuffer(count: comm.size * n * config.dim)
        dKeysOwned = FloatBuffer(count: n * config.dim); dKeysShuffled = FloatBuffer(count: n * config.dim)
        localBatch = n; imageShape = (c, h, w)
    }

    public func step(_ input: StepInput) throws -> StepResult {
        precondition(localBatch > 0, "EndToEndMethod.step before plan")
        let n = localBatch, D = config.dim
        var clock = PhaseClock(timeline: timeline)
        // 1. keys, with the activations kept for their backward
        keyPath.copyState(from: query)
        try computeKeys(input.imK, perm: input.perm)
        query.buffers.values.copy(from: keyPath.buffers.values)
        query.counters = keyPath.counters
        clock.lap(\.keyForward)

        // 2. queries
        query.forward(input.imQ, training: true)
        qNorm.forward(query.projection)
        clock.lap(\.queryForward)

        // 3-4. the global batch's keys, the loss, each key's gradient back to its owner
        try comm.allgather(keysOwned.ptr, count: n * D, into: gathered.ptr)
        let r = contrast.forwardBackward(q: qNorm.y.ptr, k: gathered.ptr, offset: comm.rank * n,
                                         temperature: config.temperature, keyGradient: true)
        try comm.reduceScatter(contrast.dK.ptr, count: n * D, into: dKeysOwned.ptr, op: .sum)
        qNorm.backward(contrast.dQ.ptr)
        clock.lap(\.loss)

        // 5. both backward passes; the key path's gradient joins each bucket before it is sent
        if config.shuffleBN {
            let plan = ShuffleBN.Plan(perm: input.perm, worldSize: comm.size, rank: comm.rank)
            try shuffleBN.shuffle(dKeysOwned.ptr, into: dKeysShuffled.ptr, rowSize: D, plan: plan)
        } else {
            dKeysShuffled.copy(from: dKeysOwned)
        }
        kNorm.backward(dKeysShuffled.ptr)
        keyPath.backward(kNorm.dX.ptr)
        buckets.begin()
        var summedFrom = query.params.count
        let qGrads = query.params.grads.ptr, kGrads = UnsafePointer(keyPath.params.grads.ptr)
        query.backward(qNorm.dX.ptr) { [buckets] offset in
            BLAS.axpy(n: summedFrom - offset, alpha: 1, x: kGrads + offset, y: qGrads + offset)
            summedFrom = offset
            buckets.ready(from: offset)
        }
        clock.lap(\.backward)
        try buckets.finish()
        clock.lap(\.allreduceWait)

        // 6. SGD
        optimizer.step(lr: input.lr)
        clock.lap(\.optimizer)
        return StepResult(loss: r.loss, acc1: r.acc1, timings: clock.timings, buckets: buckets.lastStarts)
    }

    /// crops: [n, C, H, W] -> keysOwned: [n, D] in sample order, through the key path (shuffled
    /// across ranks for BatchNorm when enabled).
    func computeKeys(_ crops: UnsafePointer<Float>, perm: [Int]) throws {
        let encode = { [keyPath, kNorm] (x: UnsafePointer<Float>) -> UnsafePointer<Float> in
            keyPath.forward(x, training: true)
            kNorm.forward(keyPath.projection)
            return UnsafePointer(kNorm.y.ptr)
        }
        if config.shuffleBN {
            try shuffleBN.keys(of: crops, sampleSize: imageShape.c * imageShape.h * imageShape.w, dim: config.dim,
                               perm: perm, into: keysOwned.ptr, encode: encode)
        } else {
            keysOwned.ptr.update(from: encode(crops), count: localBatch * config.dim)
        }
    }

    // MARK: - State (the encoder and SGD only)

    public func addState(to w: inout SafeTensorsWriter) {}
    public func validateState(_ f: SafeTensorsFile) throws {}
    public func loadState(_ f: SafeTensorsFile) throws {}

    public var sharedState: [(name: String, checksum: Double)] {
        [("weights", Self.checksum(query.params.values.ptr, query.params.count))]
    }

    public func perturbSharedState() { query.params.values.ptr[0] += 1e-3 }
}
