import MoCoTensor
import MoCoLayers
import MoCoOptim
import MoCoComm
import SafeTensors

public struct StepResult: Sendable {
    /// Loss and contrastive top-1 (%) on this rank's samples.
    public var loss: Double
    public var acc1: Double
    public var timings: StepTimings
    /// The gradient buckets' allreduces in the order they started (none on one rank).
    public var buckets: [BucketStart] = []
}

/// MoCo (He et al. 2020) on one rank: a query encoder trained by SGD, a momentum key encoder,
/// the global key queue, and the collectives of data-parallel training through a `Communicator`.
///
/// One step (`step`), in the order the code runs it:
///  1. θ_k ← m·θ_k + (1 − m)·θ_q                        (parameters only; `momentumUpdate`)
///  2. k = normalize(f_k(shuffle(x_k))), unshuffled     (shuffle-BN across ranks; `ShuffleBN`)
///  3. q = normalize(f_q(x_q))                          (BatchNorm on batch statistics)
///  4. L = CE([q·k, q·queue] / T, 0)                     (InfoNCE)
///  5. backward; gradients averaged across ranks        (bucketed, overlapped; `GradientBuckets`)
///  6. enqueue the all-gathered keys of every rank, in rank order (the oldest leave the queue)
///  7. SGD step on θ_q
/// Algorithm 1 of the paper computes q before k and updates θ_k after the SGD step; neither
/// order changes a value (f_q's forward does not read θ_k, and the update uses θ_q before this
/// step's SGD either way), and computing k first lets the key encoder's activations live in
/// the query encoder's gradient scratch, which is free until the query forward.
public final class MoCoModel: ContrastiveMethod {
    public let config: MoCoConfig
    public let engine: EngineConfig
    public let query: Encoder
    public let key: Encoder
    public let queue: KeyQueue
    public let optimizer: Optimizer
    public let comm: Communicator
    /// Where each step's phases are recorded (`--timeline`); nil: nowhere.
    public var timeline: Timeline?
    let qNorm = L2Normalize(), kNorm = L2Normalize()
    let infoNCE: InfoNCE
    /// InstDisc's NCE over the same logits (`--loss nce`), with its Z.
    public let nce: NCE?
    let shuffleBN: ShuffleBN
    let buckets: GradientBuckets
    private var keysOwned = FloatBuffer(count: 0), keysOther = FloatBuffer(count: 0)
    private var gathered = FloatBuffer(count: 0), symmetricKeys = FloatBuffer(count: 0)
    private var savedGrads = FloatBuffer(count: 0)
    private var reducer: CommStatReducer?
    public private(set) var localBatch = 0
    private var imageShape = (c: 0, h: 0, w: 0)
    /// Where each queue column came from (`--log-consistency`), once started.
    public private(set) var ledger: EntryLedger?

    /// - Parameters:
    ///   - inChannels: channels of the images (from the dataset).
    ///   - datasetCount: training images, N of NCE's noise distribution 1/N (needed with `--loss nce`).
    public init(config: MoCoConfig, inChannels: Int, engine: EngineConfig = EngineConfig(), seed: UInt64, comm: Communicator,
                datasetCount: Int = 0) {
        precondition(config.loss == .infonce || datasetCount > 0, "NCE needs the dataset size")
        self.config = config
        self.engine = engine
        self.comm = comm
        query = Encoder(architecture: config.architecture, head: config.head, inChannels: inChannels, dim: config.dim,
                        engine: engine)
        // The key encoder runs strictly before the query's forward, never alongside it, so it
        // shares the query's convolution workspace.
        key = Encoder(architecture: config.architecture, head: config.head, inChannels: inChannels, dim: config.dim,
                      trainable: false, engine: engine, workspace: query.workspace)
        query.initialize(seed: seed, scheme: config.initialization)
        key.copyState(from: query)
        query.bnSplits = config.bnSplits
        key.bnSplits = config.bnSplits
        if config.syncBN {
            let r = CommStatReducer(comm: comm)
            reducer = r
            query.setBatchStatReducer(r)
        }
        queue = KeyQueue(dim: config.dim, size: config.queueSize, seed: seed)
        optimizer = makeOptimizer(config.optimizer, query.params, momentum: config.sgdMomentum, weightDecay: config.weightDecay,
                                  threads: engine.threads)
        infoNCE = InfoNCE(dim: config.dim, queueSize: config.queueSize, threads: engine.threads)
        nce = config.loss == .nce ? NCE(dataCount: datasetCount) : nil
        shuffleBN = ShuffleBN(comm: comm)
        buckets = GradientBuckets(comm: comm, grads: query.params.grads.ptr, count: query.params.count,
                                  bucketFloats: config.bucketFloats)
    }

    /// This rank's keys of the last step, [n, dim] (tests).
    var keysForTesting: [Float] { keysOwned.array }

    /// Plans every buffer for a local batch of `n` images of c x h x w.
    public func plan(localBatch n: Int, channels c: Int, height h: Int, width w: Int) {
        if n == localBatch && (c, h, w) == imageShape { return }
        query.plan(batch: n, height: h, width: w, backward: true)
        // The key forward ends before the query forward begins: its activations live in the
        // query encoder's gradient scratch.
        key.plan(batch: n, height: h, width: w, backward: false, borrowing: query)
        qNorm.plan(rows: n, dim: config.dim, backward: true)
        kNorm.plan(rows: n, dim: config.dim, backward: false)
        infoNCE.plan(rows: n)
        keysOwned = FloatBuffer(count: n * config.dim)
        keysOther = FloatBuffer(count: n * config.dim)
        let perRank = (config.symmetric ? 2 : 1) * n * config.dim
        gathered = FloatBuffer(count: comm.size * perRank)
        if config.symmetric {
            savedGrads = FloatBuffer(count: query.params.count)
            symmetricKeys = FloatBuffer(count: perRank)
        }
        localBatch = n; imageShape = (c, h, w)
    }

    /// One training step on this rank's crops.
    /// - Parameters:
    ///   - imQ, imK: [n, C, H, W], this rank's contiguous slice of the global batch.
    ///   - perm: the shuffle-BN permutation of the global batch (identical on every rank;
    ///     `ShuffleBN.permutation`).
    ///   - provenance: the global batch's indices, epoch and step, recorded in the ledger if any.
    public func step(imQ: UnsafePointer<Float>, imK: UnsafePointer<Float>, perm: [Int], lr: Float,
                     provenance: StepProvenance? = nil) throws -> StepResult {
        precondition(localBatch > 0, "MoCoModel.step before plan")
        var clock = PhaseClock(timeline: timeline)
        // 1-2. momentum update, then the keys (no gradient)
        momentumUpdate(key: key.params, query: query.params, m: config.momentum, threads: engine.threads)
        try computeKeys(imK, perm: perm, into: keysOwned.ptr)
        clock.lap(\.keyForward)

        // 3-5. queries, InfoNCE, backward with the gradients averaged across ranks
        let loss: Double, acc: Double
        buckets.begin()
        if config.symmetric {
            // L = ctr(q1, k2) + ctr(q2, k1) (MoCo CIFAR demo; Chen, Xie, He 2021 eq. 2)
            try computeKeys(imQ, perm: perm, into: keysOther.ptr)
            clock.lap(\.keyForward)
            let (l1, a1) = try contrast(imQ, keys: keysOwned.ptr, clock: &clock, onGradientsReady: nil)
            savedGrads.copy(from: query.params.grads)
            let (l2, a2) = try contrast(imK, keys: keysOther.ptr, clock: &clock, onGradientsReady: nil)
            BLAS.axpy(n: query.params.count, alpha: 1, x: savedGrads.ptr, y: query.params.grads.ptr)
            buckets.ready(from: 0)
            loss = l1 + l2; acc = (a1 + a2) / 2
        } else {
            (loss, acc) = try contrast(imQ, keys: keysOwned.ptr, clock: &clock, onGradientsReady: buckets.ready(from:))
        }
        try buckets.finish()
        clock.lap(\.allreduceWait)

        // 6. enqueue this step's keys of every rank
        try enqueueAllRanksKeys(provenance: provenance)
        clock.lap(\.enqueue)

        // 7. SGD on the query encoder
        optimizer.step(lr: lr)
        clock.lap(\.optimizer)
        return StepResult(loss: loss, acc1: acc, timings: clock.timings, buckets: buckets.lastStarts)
    }

    public func step(_ input: StepInput) throws -> StepResult {
        try step(imQ: input.imQ, imK: input.imK, perm: input.perm, lr: input.lr,
                 provenance: ledger == nil ? nil : try globalProvenance(input))
    }

    /// The global batch's dataset indices (all-gathered, rank order), for the ledger.
    func globalProvenance(_ input: StepInput) throws -> StepProvenance {
        let local = input.indices.map(Int64.init)
        var all = [Int64](repeating: 0, count: comm.size * local.count)
        try local.withUnsafeBytes { s in
            try all.withUnsafeMutableBytes { r in try comm.allgather(bytes: s.baseAddress!, count: s.count, into: r.baseAddress!) }
        }
        var p = StepProvenance(globalIndices: all.map(Int.init), epoch: input.epoch, step: input.step)
        p.perm = input.perm
        return p
    }

    /// Keys of `crops` [n, C, H, W] with the key encoder in training mode (batch statistics),
    /// shuffled across ranks for BatchNorm when enabled: keys: [n, dim] in sample order.
    func computeKeys(_ crops: UnsafePointer<Float>, perm: [Int], into keys: UnsafeMutablePointer<Float>) throws {
        let encode = { [key, kNorm] (x: UnsafePointer<Float>) -> UnsafePointer<Float> in
            key.forward(x, training: true)
            kNorm.forward(key.projection)
            return UnsafePointer(kNorm.y.ptr)
        }
        if config.shuffleBN {
            try shuffleBN.keys(of: crops, sampleSize: imageShape.c * imageShape.h * imageShape.w, dim: config.dim,
                               perm: perm, into: keys, encode: encode)
        } else {
            keys.update(from: encode(crops), count: localBatch * config.dim)
        }
    }

    /// Query forward, InfoNCE and backward for one (query crop, key) pairing: gradients in
    /// `query.params.grads`, `onGradientsReady` called as they become final.
    func contrast(_ imQ: UnsafePointer<Float>, keys: UnsafePointer<Float>, clock: inout PhaseClock,
                  onGradientsReady: ((Int) -> Void)?) throws -> (loss: Double, acc1: Double) {
        query.forward(imQ, training: true)
        qNorm.forward(query.projection)
        clock.lap(\.queryForward)
        let r: (loss: Double, acc1: Double)
        if let nce {
            // NCE (Wu et al. 2018) with the key as the data sample and the queue as K noise samples
            r = try infoNCE.forwardBackward(q: qNorm.y.ptr, k: keys, queue: queue.keys.ptr, temperature: config.temperature) {
                logits, rows, columns, dLogits in
                if nce.z == nil { try estimateZ(nce, logits: logits, rows: rows, columns: columns, comm: comm) }
                return nce.forwardBackward(logits: logits, rows: rows, columns: columns, dLogits: dLogits)
            }
        } else {
            r = infoNCE.forwardBackward(q: qNorm.y.ptr, k: keys, queue: queue.keys.ptr, temperature: config.temperature)
        }
        qNorm.backward(infoNCE.dQ.ptr)
        clock.lap(\.loss)
        query.backward(qNorm.dX.ptr, onGradientsReady: onGradientsReady)
        clock.lap(\.backward)
        return r
    }

    /// All-gathers this step's keys of every rank and enqueues them in rank order, so that the
    /// queue is identical everywhere. Symmetric: cat([k1, k2]) per rank, the keys of the first
    /// crops (computed second) before those of the second.
    /// With a ledger, records each column's image, epoch, step and view (1: the key crop; 0 for
    /// the symmetric loss's keys of the first crops).
    func enqueueAllRanksKeys(provenance: StepProvenance? = nil) throws {
        let n = localBatch, D = config.dim
        var local = UnsafePointer(keysOwned.ptr)
        var perRank = n
        if config.symmetric {
            symmetricKeys.ptr.update(from: keysOther.ptr, count: n * D)
            (symmetricKeys.ptr + n * D).update(from: keysOwned.ptr, count: n * D)
            local = UnsafePointer(symmetricKeys.ptr)
            perRank = 2 * n
        }
        try comm.allgather(local, count: perRank * D, into: gathered.ptr)
        if let ledger, let p = provenance {
            let sub = StepProvenance.subBatches(perm: config.shuffleBN ? p.perm : nil, batch: comm.size * n,
                                                subBatch: n / config.bnSplits)
            for r in 0..<comm.size {
                for e in 0..<perRank {
                    let g = r * n + e % n, view = config.symmetric && e < n ? 0 : 1
                    ledger.record(slot: (queue.pointer + r * perRank + e) % queue.size,
                                  .init(index: p.globalIndices[g], epoch: p.epoch, step: p.step, view: view,
                                        chunk: sub[g].chunk, position: sub[g].position))
                }
            }
        }
        queue.enqueue(gathered.ptr, count: comm.size * perRank)
    }
}

extension MoCoModel: StoredEntries {
    public func startLedger() { if ledger == nil { ledger = EntryLedger(slots: queue.size) } }
    public var entryEncoder: Encoder { key }
    public func storedEntry(_ slot: Int, into out: UnsafeMutablePointer<Float>) {
        for d in 0..<queue.dim { out[d] = queue.keys.ptr[d * queue.size + slot] }
    }
}

extension MoCoModel {
    /// The key encoder, the queue and its pointer (and NCE's Z).
    public func addState(to w: inout SafeTensorsWriter) {
        EncoderState.add(key, prefix: "encoder_k.", to: &w)
        w.add("queue", shape: [queue.dim, queue.size], floats: queue.keys.array)
        w.add("queue_ptr", shape: [1], int64s: [Int64(queue.pointer)])
        if let z = nce?.z { w.add("nce_z", shape: [1], floats: [z]) }
    }

    public func validateState(_ f: SafeTensorsFile) throws {
        try f.expect("queue", dtype: .f32, shape: [queue.dim, queue.size])
        try f.expect("queue_ptr", dtype: .i64, shape: [1])
        let ptr = try f.int64s("queue_ptr")[0]
        guard ptr >= 0 && ptr < queue.size else { throw SafeTensorsError(path: f.path, message: "queue_ptr \(ptr) outside 0..<\(queue.size)") }
        if f.names.contains("nce_z") { try f.expect("nce_z", dtype: .f32, shape: [1]) }
        try EncoderState.validate(key, in: f, prefix: "encoder_k.")
    }

    public func loadState(_ f: SafeTensorsFile) throws {
        try EncoderState.load(key, from: f, prefix: "encoder_k.")
        queue.restore(values: try f.floats("queue"), pointer: Int(try f.int64s("queue_ptr")[0]))
        if let nce { nce.z = f.names.contains("nce_z") ? try f.floats("nce_z")[0] : nil }
    }

    public var sharedState: [(name: String, checksum: Double)] {
        [("queue", Self.checksum(queue.keys.ptr, queue.keys.count)), ("queue pointer", Double(queue.pointer)),
         ("NCE Z", Double(nce?.z ?? 0)),
         ("query weights", Self.checksum(query.params.values.ptr, query.params.count)),
         ("key weights", Self.checksum(key.params.values.ptr, key.params.count))]
    }

    public func perturbSharedState() { queue.keys.ptr[0] += 1e-3 }
}

/// Synchronised BatchNorm statistics through the communicator.
final class CommStatReducer: BatchStatReducer {
    let comm: Communicator
    init(comm: Communicator) { self.comm = comm }
    var workers: Int { comm.size }
    func sumAcrossWorkers(_ values: UnsafeMutablePointer<Double>, count: Int) {
        do { try comm.allreduce(values, count: count, op: .sum) }
        catch { comm.abort("synchronised BatchNorm allreduce failed: \(error)", code: 1) }
    }
}
