import MoCoTensor
import MoCoLayers
import MoCoOptim
import MoCoComm
import SafeTensors

/// Instance Discrimination with a memory bank (Wu et al. 2018, "InstDisc"), the mechanism MoCo
/// replaces (He et al. 2020, Fig. 2b): one encoder, no key encoder; each image's positive is its
/// own stored feature, the negatives K features drawn from the bank, and the bank moves towards
/// the new features after the step.
///
/// One step, in the order the code runs it:
///  1. f = normalize(f_q(x))                                 (one view: the query crop)
///  2. K negatives per image, drawn uniformly from the bank   (pure in seed, step, position)
///  3. s = [f·v_i, f·v_neg] / T;  L = NCE(s) or InfoNCE(s)    (Z of NCE from the first batch)
///  4. backward; gradients averaged across ranks               (`GradientBuckets`)
///  5. all-gather (index, f) of every rank; v_i ← normalize(m_b·v_i + (1 − m_b)·f)
///  6. SGD step on θ
/// Every rank keeps the whole bank [N, dim] and applies the same updates in rank order, so it
/// stays identical everywhere (checked by `--check-consistency`).
public final class MemoryBankMethod: ContrastiveMethod, StoredEntries {
    public let config: MoCoConfig
    public let engine: EngineConfig
    public let comm: Communicator
    /// Where each step's phases are recorded (`--timeline`); nil: nowhere.
    public var timeline: Timeline?
    public let query: Encoder
    public let bank: MemoryBank
    public let optimizer: Optimizer
    /// NCE's state (Z), with `--loss nce`.
    public let nce: NCE?
    let seed: UInt64
    let norm = L2Normalize()
    let buckets: GradientBuckets
    private var positives: [Int32] = [], negatives: [Int32] = []
    private var grouping = MemoryBank.Grouping()
    private var logits = FloatBuffer(count: 0), dLogits = FloatBuffer(count: 0), dQ = FloatBuffer(count: 0)
    private var gatheredFeatures = FloatBuffer(count: 0)
    private var gatheredIndices: [Int64] = []
    public private(set) var localBatch = 0
    /// Where each bank row was last written from (`--log-consistency`), once started.
    public private(set) var ledger: EntryLedger?

    public init(config: MoCoConfig, inChannels: Int, datasetCount: Int, engine: EngineConfig = EngineConfig(),
                seed: UInt64, comm: Communicator) {
        self.config = config; self.engine = engine; self.comm = comm; self.seed = seed
        query = Encoder(architecture: config.architecture, head: config.head, inChannels: inChannels, dim: config.dim,
                        engine: engine)
        query.initialize(seed: seed, scheme: config.initialization)
        query.bnSplits = config.bnSplits
        if config.syncBN { query.setBatchStatReducer(CommStatReducer(comm: comm)) }
        bank = MemoryBank(count: datasetCount, dim: config.dim, seed: seed)
        optimizer = makeOptimizer(config.optimizer, query.params, momentum: config.sgdMomentum, weightDecay: config.weightDecay,
                                  threads: engine.threads)
        nce = config.loss == .nce ? NCE(dataCount: datasetCount) : nil
        buckets = GradientBuckets(comm: comm, grads: query.params.grads.ptr, count: query.params.count,
                                  bucketFloats: config.bucketFloats)
    }

    public func plan(localBatch n: Int, channels c: Int, height h: Int, width w: Int) {
        query.plan(batch: n, height: h, width: w, backward: true)
        norm.plan(rows: n, dim: config.dim, backward: true)
        guard n != localBatch else { return }
        let K = config.queueSize
        positives = .init(repeating: 0, count: n)
        negatives = .init(repeating: 0, count: n * K)
        logits = FloatBuffer(count: n * (1 + K)); dLogits = FloatBuffer(count: n * (1 + K))
        dQ = FloatBuffer(count: n * config.dim)
        gatheredFeatures = FloatBuffer(count: comm.size * n * config.dim)
        gatheredIndices = .init(repeating: 0, count: comm.size * n)
        localBatch = n
    }

    public func step(_ input: StepInput) throws -> StepResult {
        precondition(localBatch > 0 && input.indices.count == localBatch, "MemoryBankMethod.step before plan")
        let n = localBatch, K = config.queueSize, T = engine.threads
        let invT = 1 / config.temperature
        var clock = PhaseClock(timeline: timeline)
        // 1. features of the query crops
        query.forward(input.imQ, training: true)
        norm.forward(query.projection)
        clock.lap(\.queryForward)

        // 2-3. positives and sampled negatives from the bank, the loss
        for i in 0..<n { positives[i] = Int32(input.indices[i]) }
        negatives.withUnsafeMutableBufferPointer {
            bank.sampleNegatives(seed: seed, step: input.step, firstPosition: comm.rank * n, samples: n, perSample: K,
                                 into: $0.baseAddress!)
        }
        positives.withUnsafeBufferPointer { pos in
            negatives.withUnsafeBufferPointer { neg in
                grouping.build(positives: pos.baseAddress!, negatives: neg.baseAddress!, rows: n, perSample: K, bankRows: bank.count)
            }
        }
        bank.logits(q: norm.y.ptr, grouping: grouping, rows: n, perSample: K, invT: invT, into: logits.ptr, threads: T)
        let r = try criterion()
        bank.gradient(dLogits: dLogits.ptr, grouping: grouping, rows: n, perSample: K, invT: invT, into: dQ.ptr, threads: T)
        norm.backward(dQ.ptr)
        clock.lap(\.loss)

        // 4. backward, gradients averaged across ranks
        buckets.begin()
        query.backward(norm.dX.ptr, onGradientsReady: buckets.ready(from:))
        clock.lap(\.backward)
        try buckets.finish()
        clock.lap(\.allreduceWait)

        // 5. every rank's (index, feature) pairs into the bank, in rank order
        try updateBank(indices: input.indices, epoch: input.epoch, step: input.step)
        clock.lap(\.enqueue)

        // 6. SGD
        optimizer.step(lr: input.lr)
        clock.lap(\.optimizer)
        return StepResult(loss: r.loss, acc1: r.acc1, timings: clock.timings, buckets: buckets.lastStarts)
    }

    /// InfoNCE (cross-entropy with the positive at 0) or NCE over `logits`, into `dLogits`;
    /// estimates NCE's Z from the first batch of every rank.
    func criterion() throws -> (loss: Double, acc1: Double) {
        let n = localBatch, cols = 1 + config.queueSize
        guard let nce else {
            return CrossEntropy.forwardBackward(logits: logits.ptr, rows: n, classes: cols, targets: { _ in 0 },
                                                dLogits: dLogits.ptr, threads: engine.threads)
        }
        if nce.z == nil { try estimateZ(nce, logits: logits.ptr, rows: n, columns: cols, comm: comm) }
        return nce.forwardBackward(logits: logits.ptr, rows: n, columns: cols, dLogits: dLogits.ptr)
    }

    func updateBank(indices: [Int], epoch: Int = 0, step: Int = 0) throws {
        let n = localBatch, D = config.dim
        try comm.allgather(norm.y.ptr, count: n * D, into: gatheredFeatures.ptr)
        let local = indices.map(Int64.init)
        try local.withUnsafeBytes { s in
            try gatheredIndices.withUnsafeMutableBytes { r in
                try comm.allgather(bytes: s.baseAddress!, count: s.count, into: r.baseAddress!)
            }
        }
        gatheredIndices.withUnsafeBufferPointer {
            bank.update(indices: $0.baseAddress!, features: gatheredFeatures.ptr, count: comm.size * n,
                        momentum: config.bankMomentum)
        }
        if let ledger {
            // The feature came from the query crop, view 0, encoded in the unshuffled batch.
            let sub = StepProvenance.subBatches(perm: nil, batch: gatheredIndices.count, subBatch: localBatch / config.bnSplits)
            for (g, i) in gatheredIndices.enumerated() {
                ledger.record(slot: Int(i), .init(index: Int(i), epoch: epoch, step: step, view: 0, chunk: sub[g].chunk,
                                                  position: sub[g].position))
            }
        }
    }

    // MARK: - Stored entries (`--log-consistency`)

    public func startLedger() { if ledger == nil { ledger = EntryLedger(slots: bank.count) } }
    public var entryEncoder: Encoder { query }
    public func storedEntry(_ slot: Int, into out: UnsafeMutablePointer<Float>) {
        out.update(from: bank.features.ptr + slot * bank.dim, count: bank.dim)
    }

    // MARK: - State

    public func addState(to w: inout SafeTensorsWriter) {
        w.add("memory_bank", shape: [bank.count, bank.dim], floats: UnsafeBufferPointer(start: bank.features.ptr, count: bank.features.count))
        if let z = nce?.z { w.add("nce_z", shape: [1], floats: [z]) }
    }

    public func validateState(_ f: SafeTensorsFile) throws {
        try f.expect("memory_bank", dtype: .f32, shape: [bank.count, bank.dim])
        if f.names.contains("nce_z") { try f.expect("nce_z", dtype: .f32, shape: [1]) }
    }

    public func loadState(_ f: SafeTensorsFile) throws {
        bank.restore(values: try f.floats("memory_bank"))
        if let nce { nce.z = f.names.contains("nce_z") ? try f.floats("nce_z")[0] : nil }
    }

    public var sharedState: [(name: String, checksum: Double)] {
        [("memory bank", Self.checksum(bank.features.ptr, bank.features.count)),
         ("NCE Z", Double(nce?.z ?? 0)),
         ("weights", Self.checksum(query.params.values.ptr, query.params.count))]
    }

    public func perturbSharedState() { bank.features.ptr[0] += 1e-3 }
}

/// Z = N · mean(exp(s)) over the first global batch (Wu et al. 2018, eq. 5): the sums of every
/// rank, so that all ranks fix the same Z.
func estimateZ(_ nce: NCE, logits: UnsafePointer<Float>, rows: Int, columns: Int, comm: Communicator) throws {
    let part = nce.partialZ(logits: logits, rows: rows, columns: columns)
    var sums = [part.sum, part.count]
    try sums.withUnsafeMutableBufferPointer { try comm.allreduce($0.baseAddress!, count: 2, op: .sum) }
    nce.setZ(sum: sums[0], count: sums[1])
}
