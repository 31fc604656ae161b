import MoCoTensor
import MoCoLayers
import MoCoData

/// A method whose negatives are stored entries written at earlier steps: MoCo's queue of keys,
/// InstDisc's memory bank. He et al. 2020 (sec. 3.2, "momentum update"; Fig. 2) argue that
/// MoCo's entries stay consistent with each other because the key encoder changes slowly,
/// while the bank's rows were written by encoders of up to an epoch ago.
public protocol StoredEntries: AnyObject {
    /// Starts recording the origin of every entry written from now on (`EntryLedger`).
    func startLedger()
    /// The ledger, nil until `startLedger`.
    var ledger: EntryLedger? { get }
    /// The encoder that writes entries now: MoCo's key encoder, the bank's (only) encoder.
    var entryEncoder: Encoder { get }
    /// Entry `slot` (queue column, bank row) -> out: [dim]
    func storedEntry(_ slot: Int, into out: UnsafeMutablePointer<Float>)
}

/// `--log-consistency N`: how far the stored negatives are from the keys the current encoder
/// would give the same crops. For a sample of about S entries of known origin it rebuilds each
/// one's crop (the same image, epoch and view, hence the same augmentation: crops are a pure
/// function of them), encodes the crops with a copy of `entryEncoder` and reports
///   cos = mean_i ⟨e_i, normalize(f_now(crop_i))⟩   and   age = mean_i (steps done − step_i − 1),
/// the age of an entry written by the last completed step being 0.
///
/// BatchNorm runs in training mode, as when the entries were written (MoCo's keys, the bank's
/// features), and on the same companions: the sample is made of whole BatchNorm sub-batches of
/// earlier steps (`EntryLedger.Provenance.chunk`; with shuffle-BN, the shuffled sub-batches),
/// each re-encoded in its original order, so every entry is normalised with the statistics of
/// the very images it was normalised with. The cosine then measures the encoder's change alone:
/// 1 up to rounding for an encoder that never changes (m = 1). A sub-batch is measured only
/// while all its entries are still stored (after a partial overwrite of a queue whose K is not
/// a multiple of B, or a bank row rewritten since, its sub-batch drops out). A bank row also
/// blends earlier features (v ← normalize(m_b·v + (1 − m_b)·f)): the cosine measures that too,
/// which is the bank's inconsistency. (With `--sync-bn` the bank's features were normalised
/// across ranks; the probe's per-sub-batch statistics then approximate them.)
///
/// The probe's encoder is its own: the method's encoders, buffers and BatchNorm running
/// statistics are untouched, and the run's values do not depend on whether it is measured.
public final class KeyConsistencyProbe {
    public struct Measurement: Sendable {
        public var cos: Double
        public var age: Double
        /// Entries measured.
        public var entries: Int
    }

    public let sample: Int, subBatch: Int
    let seed: UInt64
    let encoder: Encoder
    private var crops = FloatBuffer(count: 0), stored = FloatBuffer(count: 0), fresh = FloatBuffer(count: 0)

    /// - Parameters:
    ///   - sample: S, entries measured each time: max(1, S / subBatch) whole sub-batches (fewer
    ///     while fewer are stored).
    ///   - subBatch: BatchNorm sub-batch size of the training step (per-rank batch / bn-splits).
    public init(config: MoCoConfig, inChannels: Int, engine: EngineConfig, sample: Int, subBatch: Int, seed: UInt64) {
        precondition(sample >= 2 && subBatch >= 2)
        self.sample = sample; self.subBatch = subBatch; self.seed = seed
        encoder = Encoder(architecture: config.architecture, head: config.head, inChannels: inChannels, dim: config.dim,
                          trainable: false, engine: engine, hidden: config.mlpDim)
    }

    /// The sub-batches measured after `stepsDone` steps: a uniform sample without replacement of
    /// the complete ones, a pure function of the seed, the step and the ledger. -> for each, its
    /// slots in their original order.
    public func chooseGroups(_ ledger: EntryLedger, stepsDone: Int) -> [[Int]] {
        struct Key: Hashable, Comparable {
            var step: Int, view: Int, chunk: Int
            static func < (a: Key, b: Key) -> Bool { (a.step, a.view, a.chunk) < (b.step, b.view, b.chunk) }
        }
        var groups: [Key: [(position: Int, slot: Int)]] = [:]
        for slot in ledger.knownSlots {
            let p = ledger.provenance(slot)!
            groups[Key(step: p.step, view: p.view, chunk: p.chunk), default: []].append((p.position, slot))
        }
        let complete = groups.keys.filter { groups[$0]!.count == subBatch }.sorted()
        guard !complete.isEmpty else { return [] }
        var rng = Xoshiro(seed: seed, stream: [0x434F_4E53, UInt64(stepsDone)])   // "CONS"
        let order = rng.permutation(complete.count)
        return order.prefix(max(1, sample / subBatch)).map { groups[complete[$0]]!.sorted { $0.position < $1.position }.map(\.slot) }
    }

    /// One measurement, or nil while no sub-batch is completely stored.
    public func measure(_ method: StoredEntries, dataset: Dataset, augment config: AugmentConfig, dataSeed: UInt64,
                        stepsDone: Int) -> Measurement? {
        guard let ledger = method.ledger else { return nil }
        let groups = chooseGroups(ledger, stepsDone: stepsDone)
        guard !groups.isEmpty else { return nil }
        let slots = groups.flatMap { $0 }
        let n = slots.count
        let size = dataset.imageSize, D = encoder.dim
        if crops.count < n * size { crops = FloatBuffer(count: n * size) }
        if stored.count < n * D { stored = FloatBuffer(count: n * D); fresh = FloatBuffer(count: n * D) }
        var ageSum = 0.0
        for (j, slot) in slots.enumerated() {
            let p = ledger.provenance(slot)!
            var rng = TwoCropLoader.viewGenerator(seed: dataSeed, epoch: p.epoch, index: p.index, view: p.view)
            MoCoData.augment(dataset, index: p.index, config: config, rng: &rng, out: crops.ptr + j * size)
            method.storedEntry(slot, into: stored.ptr + j * D)
            ageSum += Double(stepsDone - p.step - 1)
        }
        encoder.copyState(from: method.entryEncoder)
        encoder.plan(batch: n, height: dataset.height, width: dataset.width, backward: false)
        encoder.bnSplits = groups.count
        encoder.forward(crops.ptr, training: true)
        fresh.ptr.update(from: encoder.projection, count: n * D)
        l2NormalizeRows(fresh.ptr, rows: n, dim: D)
        var cosSum = 0.0
        for j in 0..<n {
            let a = stored.ptr + j * D, b = fresh.ptr + j * D
            var dot = 0.0, na = 0.0
            for d in 0..<D { dot += Double(a[d]) * Double(b[d]); na += Double(a[d]) * Double(a[d]) }
            cosSum += dot / max(na.squareRoot(), 1e-12)
        }
        return Measurement(cos: cosSum / Double(n), age: ageSum / Double(n), entries: n)
    }
}

/// `--log-consistency N --consistency-sample S`: measure every N global steps, S entries each time.
public struct ConsistencyLogging: Sendable {
    public var every: Int
    public var sample: Int
    public init(every: Int, sample: Int = 256) { self.every = every; self.sample = sample }

    /// Checks the values and that `mechanism` stores its negatives.
    public func validate(mechanism: Mechanism) throws {
        guard every > 0 else { throw ConfigError("--log-consistency must be positive (got \(every))") }
        guard sample >= 2 else { throw ConfigError("--consistency-sample must be at least 2 (got \(sample))") }
        guard mechanism == .moco || mechanism == .memoryBank else {
            throw ConfigError("--log-consistency measures stored negatives: it needs --mechanism moco or memory-bank, not \(mechanism.rawValue)")
        }
    }
}
