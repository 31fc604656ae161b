import Foundation
import MoCoTensor
import MoCoLayers
import MoCoOptim
import MoCoData
import MoCoComm
import SafeTensors

/// What a finished (or stopped) run reports.
public struct TrainSummary: Sendable {
    public var epochsDone = 0
    public var steps = 0
    public var lastLoss = Double.nan
    public var knn: [(epoch: Int, top1: Double, seconds: Double)] = []
    public var checkpoint: String?
    public var seconds = 0.0
}

/// The run stopped early because it was asked to (`StopRequests`, e.g. SIGTERM from a
/// scheduler): every rank finished the same step, the checkpoint holds that position, and
/// `--resume auto` continues exactly. Thrown on every rank together.
public struct TrainingPreempted: Error, CustomStringConvertible {
    /// The signal that asked for the stop.
    public let signal: Int32
    public let checkpoint: String
    public let position: Checkpoint.Position
    /// The exit status of a preempted run (EX_TEMPFAIL of sysexits.h: try again later).
    public static let exitCode: Int32 = 75
    public var description: String {
        "stopped by signal \(signal) at \(position); saved \(checkpoint); continue with --resume auto"
    }
}

/// Where a request to stop early comes from (the command line: SIGTERM, SIGINT, SIGUSR1).
public protocol StopRequests {
    /// A non-zero signal number once a stop was asked for on this rank.
    func pending() -> Int32
}

/// No stop requests.
public struct NoStopRequests: StopRequests {
    public init() {}
    public func pending() -> Int32 { 0 }
}

/// `moco train`: epochs over a seeded shuffle, the learning-rate schedule, progress and metrics,
/// the kNN monitor, checkpoints and exact resume. Rank 0 writes every file; every rank runs the
/// same collectives in the same order, and every failure is agreed on before the next one.
///
/// A run has three phases, each a method: `start` (validate, load, prepare the output folder,
/// resume), `trainEpoch`, and `evaluateAndSave` after each epoch.
public final class Trainer {
    public let config: TrainConfig
    public let comm: Communicator
    let hooks: TrainingHooks
    let stops: StopRequests
    let say: (String) -> Void
    /// `--log-consistency`: a monitor, not part of the run's configuration (it changes no value).
    let consistency: ConsistencyLogging?
    /// `--timeline`: this rank's trace of steps, phases, data waits, kNN and saves (collectives
    /// are traced by a `TracingCommunicator` writing to the same timeline). Changes no value.
    let timeline: Timeline?

    public init(config: TrainConfig, comm: Communicator, hooks: TrainingHooks = NoTrainingHooks(),
                stops: StopRequests = NoStopRequests(), say: @escaping (String) -> Void = { print($0) },
                consistency: ConsistencyLogging? = nil, timeline: Timeline? = nil) {
        self.config = config; self.comm = comm; self.hooks = hooks; self.stops = stops; self.say = say
        self.consistency = consistency; self.timeline = timeline
    }

    /// Runs `body` and records it as a span on the timeline's steps lane.
    func traced<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        guard let timeline else { return try body() }
        let t0 = MonotonicClock.now()
        defer { timeline.span(name, category: "run", lane: .steps, start: t0, end: MonotonicClock.now()); timeline.flush() }
        return try body()
    }

    var isRoot: Bool { comm.rank == 0 }
    func log(_ s: String) { if isRoot { say(s) } }

    /// The state a run carries from one phase to the next.
    final class Run {
        let model: ContrastiveMethod
        let train: Dataset, test: Dataset
        let sampler: EpochSampler
        let extractor: FeatureExtractor
        /// Rank 0's metrics.jsonl and TensorBoard log (nil elsewhere).
        let metrics: RunLog?
        /// Where this invocation starts (a mid-epoch position after a preempted run).
        let start: Checkpoint.Position
        var globalStep: Int
        var summary = TrainSummary()
        var window = ProgressWindow()
        let clock = Stopwatch()
        /// The key-consistency monitor (`--log-consistency`).
        var probe: KeyConsistencyProbe?

        init(model: ContrastiveMethod, train: Dataset, test: Dataset, sampler: EpochSampler, extractor: FeatureExtractor,
             metrics: RunLog?, start: Checkpoint.Position, globalStep: Int) {
            self.model = model; self.train = train; self.test = test; self.sampler = sampler
            self.extractor = extractor; self.metrics = metrics
            self.start = start; self.globalStep = globalStep
            summary.epochsDone = start.epoch
        }
    }

    /// The training and evaluation sets of `c` on every rank (agreed: all ranks return, or all
    /// throw the same error). An image folder's evaluation set is its `val` split, loaded by
    /// `FolderLoading` (decoding shared among the ranks, one rank writing the cache); `log` is
    /// called on every rank with its progress (pass a rank-0-only printer).
    public static func loadData(_ c: TrainConfig, comm: Communicator, log: (String) -> Void = { _ in })
        throws -> (train: Dataset, test: Dataset) {
        var (train, test) = try loadSplits(kind: c.data, directory: c.dataDir, folder: c.folderOptions, comm: comm,
                                           threads: c.engine.threads, log: log)
        if c.trainSubset > 0 && c.trainSubset < train.count { train = train.prefix(c.trainSubset) }
        return (train, test)
    }

    /// Both splits of a dataset, whole, on every rank (agreed).
    public static func loadSplits(kind: DatasetKind, directory: String?, folder: ImageFolderOptions, comm: Communicator,
                                  threads: Int, log: (String) -> Void) throws -> (train: Dataset, test: Dataset) {
        if kind == .folder {
            guard let root = directory else {
                let e = ConfigError("--data folder needs --data-dir D (a folder with D/train/<class>/* and D/val/<class>/*)")
                try comm.agree(e)
                throw e
            }
            return try FolderLoading.load(root: root, options: folder, comm: comm, threads: threads, log: log)
        }
        return try comm.agreeing {
            (try Dataset.load(kind, split: .train, directory: directory), try Dataset.load(kind, split: .test, directory: directory))
        }
    }

    /// - Parameters:
    ///   - resume: a checkpoint path, or "auto" for the newest intact one in `config.out` (a new
    ///     run when there is none).
    ///   - stopAfter: end after this many completed epochs (as an interrupted run would),
    ///     keeping the schedule of the full `config.epochs`.
    /// - Throws: `TrainingPreempted` on every rank after a stop request, once its checkpoint is saved.
    public func run(resume: String? = nil, stopAfter: Int? = nil) throws -> TrainSummary {
        let c = config
        let endEpoch = min(c.epochs, stopAfter ?? c.epochs)
        let run = try start(resume: resume)
        let loader = try TwoCropLoader(dataset: run.train, sampler: run.sampler, config: c.augment, seed: c.seed,
                                       rank: comm.rank, worldSize: comm.size, startEpoch: run.start.epoch,
                                       startStep: run.start.stepInEpoch, endEpoch: endEpoch)
        defer { loader.stop() }
        if c.knnAtStart == true && c.knnEvery > 0 && run.start == Checkpoint.Position(epoch: 0) {
            // The baseline: the encoder as initialised, on the same bank and test set.
            try knnMonitor(afterEpoch: 0, run: run, what: " (the randomly initialised encoder)")
        }
        for epoch in run.start.epoch..<endEpoch {
            let first = epoch == run.start.epoch ? run.start.stepInEpoch : 0
            if let stop = try trainEpoch(epoch, from: first, run: run, loader: loader) {
                try savePreempted(signal: stop.signal, at: stop.position, run: run)
            }
            try evaluateAndSave(afterEpoch: epoch + 1, isLast: epoch + 1 == endEpoch, run: run)
        }
        run.summary.seconds = run.clock.elapsed
        run.metrics?.close()
        return run.summary
    }

    // MARK: - Start or resume

    /// Validates and loads identically on every rank, prepares the output folder, builds the
    /// model and restores a checkpoint when resuming.
    func start(resume: String?) throws -> Run {
        let c = config, W = comm.size
        // Agree before the first real collective: every rank validates and loads the same.
        try comm.agreeing { try c.validate(worldSize: W) }
        let (train, test) = try Trainer.loadData(c, comm: comm, log: log)
        try comm.agreeing {
            if train.count / c.batchSize == 0 {
                throw ConfigError("the training set (\(train.count) images) is smaller than one global batch (\(c.batchSize))")
            }
        }
        let model = Methods.make(config: c.moco, inChannels: train.channels, datasetCount: train.count, engine: c.engine,
                                 seed: c.seed, comm: comm)
        model.timeline = timeline
        let sampler = EpochSampler(datasetCount: train.count, globalBatch: c.batchSize, seed: c.seed)

        try comm.agreeing { if isRoot { try prepareOutput(resuming: resume != nil) } }
        var position = (at: Checkpoint.Position(epoch: 0), step: 0)
        if let resume, let restored = try restore(resume, into: model) { position = restored }
        let metrics = try comm.agreeing { isRoot ? try RunLog(out: c.out, continuingAfter: position.step, note: log) : nil }
        try comm.agree(isRoot ? Result { try writeConfig() }.error : nil)

        log("moco train: \(c.preset), \(c.moco.architecture.rawValue) + \(c.moco.head.rawValue) head on \(train.name) "
            + "(\(train.count) images), \(W) rank(s) x \(c.engine.threads) BLAS thread(s), global batch \(c.batchSize), "
            + "\(sampler.stepsPerEpoch) steps/epoch, \(Trainer.mechanismSummary(c.moco)) "
            + "bn-splits=\(c.moco.bnSplits)\(c.moco.shuffleBN && c.moco.mechanism != .memoryBank ? " shuffle-BN" : "")\(c.moco.syncBN ? " sync-BN" : ""), "
            + "conv \(c.engine.conv.rawValue) (dW \(c.engine.weightGrad.rawValue), strided \(c.engine.strided.rawValue)\(c.engine.conv == .winograd4 && !WinogradFused.kernelName.isEmpty ? ", fused " + WinogradFused.kernelName : "")), init \(c.moco.initialization.rawValue), "
            + "OpenBLAS \(BLASCore.current)")

        model.plan(localBatch: c.batchSize / W, channels: train.channels, height: train.height, width: train.width)
        let extractor = try FeatureExtractor(architecture: c.moco.architecture, head: c.moco.head, inChannels: train.channels,
                                             dim: c.moco.dim, height: train.height, width: train.width, engine: c.engine,
                                             hidden: c.moco.mlpDim, features: c.knnFeatures ?? .backbone)
        let run = Run(model: model, train: train, test: test, sampler: sampler, extractor: extractor, metrics: metrics,
                      start: position.at, globalStep: position.step)
        if let consistency {
            try comm.agreeing { try consistency.validate(mechanism: c.moco.mechanism) }
            (model as? StoredEntries)?.startLedger()
            run.probe = KeyConsistencyProbe(config: c.moco, inChannels: train.channels, engine: c.engine,
                                            sample: consistency.sample, subBatch: c.batchSize / W / c.moco.bnSplits, seed: c.seed)
        }
        return run
    }

    /// Restores `path` ("auto": the newest intact checkpoint in `config.out`) into `model`: rank 0
    /// reads and verifies the file, every rank validates and restores the same bytes.
    /// -> the checkpoint's position and global steps, or nil for "auto" in a folder without
    /// checkpoints (a new run).
    func restore(_ path: String, into model: ContrastiveMethod) throws -> (at: Checkpoint.Position, step: Int)? {
        let c = config
        let chosen = try comm.agreeing { () -> (bytes: [UInt8], path: String)? in
            guard isRoot else { return nil }
            return try path == "auto" ? newestIntactCheckpoint() : Trainer.readCheckpoint(path)
        }
        // Every rank learns whether there is anything to restore.
        let found = try comm.allreduce(Int64(chosen == nil ? 0 : 1), op: .max) != 0
        guard found else { return nil }
        let all = try comm.broadcast(bytes: chosen?.bytes ?? [], root: 0)
        let name = try comm.broadcast(string: chosen?.path ?? "", root: 0)
        let info = try comm.agreeing { () -> Checkpoint.Info in
            let (f, info) = try Checkpoint.open(bytes: all, path: name)
            let mismatches = c.resumeMismatches(info.config)
            if !mismatches.isEmpty {
                throw ConfigError("checkpoint does not match this configuration: " + mismatches.joined(separator: "; "))
            }
            if info.epoch > c.epochs { throw ConfigError("checkpoint is at epoch \(info.epoch), beyond --epochs \(c.epochs)") }
            if info.config.engine.conv != c.engine.conv {
                // Allowed (a user may switch), but the continuation then differs from the
                // uninterrupted run by the algorithms' rounding.
                log("note: the checkpoint was trained with --conv \(info.config.engine.conv.rawValue), this run uses "
                    + "\(c.engine.conv.rawValue); results will differ from an uninterrupted run at rounding level")
            }
            if info.config.engine.weightGrad != c.engine.weightGrad {
                log("note: the checkpoint was trained with --conv-dw \(info.config.engine.weightGrad.rawValue), this run uses "
                    + "\(c.engine.weightGrad.rawValue); results will differ from an uninterrupted run at rounding level")
            }
            if info.config.engine.strided != c.engine.strided {
                log("note: the checkpoint was trained with --conv-strided \(info.config.engine.strided.rawValue), this run uses "
                    + "\(c.engine.strided.rawValue); results will differ from an uninterrupted run at rounding level")
            }
            try Checkpoint.restore(f, into: model)
            return info
        }
        log("resumed from \(name) at \(info.position) (step \(info.step))"
            + (info.verified ? "" : "; it has no checksum (written before checksums existed), so it was not verified"))
        return (info.position, info.step)
    }

    /// Reads and verifies one checkpoint (rank 0), or throws what is wrong with it.
    static func readCheckpoint(_ path: String) throws -> (bytes: [UInt8], path: String) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError("cannot read checkpoint \(path)" + (FileManager.default.fileExists(atPath: path) ? "" : ": no such file"))
        }
        let bytes = [UInt8](data)
        do { _ = try Checkpoint.open(bytes: bytes, path: path) } catch {
            throw ConfigError("cannot resume from \(path): \(error)")
        }
        return (bytes, path)
    }

    /// `--resume auto` (rank 0): the newest checkpoint in `config.out` that verifies, saying
    /// which ones were skipped and why; nil when the folder has none; an error when none is intact.
    func newestIntactCheckpoint() throws -> (bytes: [UInt8], path: String)? {
        let candidates = Checkpoint.list(in: config.out)
        guard !candidates.isEmpty else {
            log("--resume auto: no checkpoint in \(config.out); starting a new run")
            return nil
        }
        var problems: [String] = []
        for (path, _) in candidates {
            do {
                let found = try Trainer.readCheckpoint(path)
                if !problems.isEmpty { log("--resume auto: falling back to \(path), the newest intact checkpoint") }
                return found
            } catch {
                log("--resume auto: skipping \(path): \(error)")
                problems.append("\(error)")
            }
        }
        throw ConfigError("--resume auto: no intact checkpoint in \(config.out): " + problems.joined(separator: "; "))
    }

    // MARK: - One epoch

    /// The steps of `epoch` from `first`: batches from the loader, the lr of the schedule at each
    /// step's fractional epoch, the shuffle-BN permutation, progress lines and consistency
    /// checks. After each step the ranks agree on stop requests (one 8-byte allreduce).
    /// -> the signal of an agreed stop request and the position reached (the run stops after
    /// that step), or nil.
    func trainEpoch(_ epoch: Int, from first: Int, run: Run, loader: TwoCropLoader) throws
        -> (signal: Int32, position: Checkpoint.Position)? {
        let c = config, model = run.model
        let stepsPerEpoch = run.sampler.stepsPerEpoch
        for step in first..<stepsPerEpoch {
            comm.watchdog?.beat("epoch \(epoch + 1) step \(step + 1) (global step \(run.globalStep + 1))")
            try hooks.beforeStep(run.globalStep + 1, model: model)
            let stepStart = MonotonicClock.now()
            guard let batch = try loader.next() else { throw ConfigError("data loader ended early at epoch \(epoch) step \(step)") }
            let dataWait = MonotonicClock.now() - stepStart
            timeline?.span("data wait", category: "phase", lane: .phases, start: stepStart, end: stepStart + dataWait)
            precondition(batch.epoch == epoch && batch.step == step)
            let t = Double(epoch) + Double(step) / Double(stepsPerEpoch)
            let lr = Float(c.schedule.lr(base: c.lr, epoch: t, totalEpochs: c.epochs, warmupEpochs: c.warmupEpochs))
            let perm = ShuffleBN.permutation(seed: c.seed, epoch: epoch, step: step, batch: c.batchSize)
            let r = try withExtendedLifetime(batch) {
                try model.step(StepInput(imQ: batch.query.ptr, imK: batch.key.ptr, indices: batch.indices, perm: perm, lr: lr,
                                         step: run.globalStep, progress: t / Double(c.epochs), epoch: epoch))
            }
            run.globalStep += 1
            if let timeline {
                timeline.span("step \(run.globalStep)", category: "step", lane: .steps, start: stepStart, end: MonotonicClock.now(),
                              args: [("epoch", .int(epoch + 1)), ("loss", .double(r.loss)), ("lr", .double(Double(lr)))])
                timeline.flush()
            }
            hooks.afterStep(run.globalStep, model: model)
            run.window.add(r, images: c.batchSize, dataWait: dataWait)
            if run.globalStep % c.logEvery == 0 || step == stepsPerEpoch - 1 {
                try logProgress(epoch: epoch, step: step, lr: lr, run: run)
            }
            if let probe = run.probe, let every = consistency?.every, run.globalStep % every == 0 {
                try logKeyConsistency(probe, epoch: epoch, run: run)
            }
            if c.checkConsistency > 0 && run.globalStep % c.checkConsistency == 0 {
                try checkConsistency(model, step: run.globalStep)
            }
            let signal = comm.size > 1 ? Int32(try comm.allreduce(Int64(stops.pending()), op: .max)) : stops.pending()
            if signal != 0 {
                run.summary.steps = run.globalStep
                let atEnd = step == stepsPerEpoch - 1
                if atEnd { run.summary.epochsDone = epoch + 1 }
                return (signal, Checkpoint.Position(epoch: atEnd ? epoch + 1 : epoch, stepInEpoch: atEnd ? 0 : step + 1))
            }
        }
        run.summary.epochsDone = epoch + 1
        run.summary.steps = run.globalStep
        return nil
    }

    /// After an agreed stop request: saves the position reached and throws `TrainingPreempted`.
    func savePreempted(signal: Int32, at position: Checkpoint.Position, run: Run) throws -> Never {
        log("stop requested (signal \(signal)): saving at \(position)")
        let path = try save(at: position, run: run)
        run.metrics?.close()
        throw TrainingPreempted(signal: signal, checkpoint: path, position: position)
    }

    /// One progress line and metrics record: the window's loss and top-1 averaged over ranks. A
    /// non-finite loss anywhere stops the run before any save.
    func logProgress(epoch: Int, step: Int, lr: Float, run: Run) throws {
        let c = config, stepsPerEpoch = run.sampler.stepsPerEpoch
        let w = try run.window.close(comm: comm)
        if !w.loss.isFinite {
            // Every rank sees the same reduced loss: stop together, one message.
            try stopTogether("loss became \(w.loss) at epoch \(epoch + 1) step \(step + 1); stopped without saving, the last good checkpoint is kept"
                             + (run.summary.checkpoint.map { " (\($0))" } ?? ""))
        }
        let remaining = Double((c.epochs - epoch) * stepsPerEpoch - step - 1) * Double(c.batchSize) / max(w.imagesPerSecond, 1e-9)
        log(String(format: "epoch %d/%d step %d/%d  loss %.4f  acc1 %.1f%%  lr %.5f  %.0f img/s  ETA %@",
                   epoch + 1, c.epochs, step + 1, stepsPerEpoch, w.loss, w.acc1, lr, w.imagesPerSecond, Trainer.duration(remaining)))
        try writeMetrics(.train(epoch: epoch, step: run.globalStep, elapsed: run.clock.elapsed, lr: Double(lr), window: w), run: run)
        run.summary.lastLoss = w.loss
    }

    /// One `consistency` record (`KeyConsistencyProbe`), measured on rank 0 (every rank holds
    /// the same entries and weights); the others only agree on the write.
    func logKeyConsistency(_ probe: KeyConsistencyProbe, epoch: Int, run: Run) throws {
        guard let method = run.model as? StoredEntries else { return }
        try comm.agree(isRoot ? Result {
            guard let m = probe.measure(method, dataset: run.train, augment: config.augment, dataSeed: config.seed,
                                        stepsDone: run.globalStep) else { return }
            try run.metrics?.write(.consistency(epoch: epoch, step: run.globalStep, elapsed: run.clock.elapsed,
                                                cos: m.cos, age: m.age, entries: m.entries))
        }.error : nil)
    }

    /// The mechanism's own hyperparameters, for the start line.
    static func mechanismSummary(_ m: MoCoConfig) -> String {
        let loss = m.loss == .nce ? "NCE" : "InfoNCE"
        switch m.mechanism {
        case .moco: return "moco (K=\(m.queueSize) m=\(m.momentum)) \(loss) T=\(m.temperature)"
        case .memoryBank: return "memory-bank (K=\(m.queueSize) sampled, m_b=\(m.bankMomentum)) \(loss) T=\(m.temperature)"
        case .endToEnd: return "end-to-end (the batch's keys) \(loss) T=\(m.temperature)"
        case .mocoV3: return "moco-v3 (the batch's momentum keys, m=\(m.momentum)\(m.momentumCosine ? "->1 cosine" : ""), predictor) T=\(m.temperature) \(m.optimizer.rawValue)"
        }
    }

    // MARK: - Evaluate and save

    /// After `epoch` completed epochs: the kNN monitor when due, and a checkpoint when due (and
    /// always after the last epoch of this invocation).
    func evaluateAndSave(afterEpoch epoch: Int, isLast: Bool, run: Run) throws {
        let c = config
        if c.knnEvery > 0 && (epoch % c.knnEvery == 0 || isLast) {
            try traced("kNN after epoch \(epoch)") { try knnMonitor(afterEpoch: epoch, run: run) }
        }
        if (c.saveEvery > 0 && epoch % c.saveEvery == 0) || isLast {
            _ = try traced("save epoch \(epoch)") { try save(at: Checkpoint.Position(epoch: epoch), run: run) }
        }
    }

    /// The kNN monitor after `epoch` epochs: the query encoder's backbone features of the training
    /// set as the bank, the evaluation set's as queries; a log line and a metrics record.
    func knnMonitor(afterEpoch epoch: Int, run: Run, what: String = "") throws {
        let c = config
        comm.watchdog?.beat("kNN evaluation after epoch \(epoch)")
        let knnClock = Stopwatch()
        let fx = run.extractor
        fx.encoder.copyState(from: run.model.query)
        let bank = c.knnBank.map { run.train.prefix(min($0, run.train.count)) } ?? run.train
        let test = c.knnTest.map { run.test.prefix(min($0, run.test.count)) } ?? run.test
        let top1 = try DistributedKNN.top1(train: bank, test: test, dim: fx.featureDim, k: c.knnK, t: c.knnT,
                                           comm: comm, threads: c.engine.threads) { ds, idx in fx.features(ds, indices: idx) }
        run.summary.knn.append((epoch, top1, run.clock.elapsed))
        log(String(format: "epoch %d: kNN top-1 %.2f%%%@ (k=%d, t=%.2f; %.1f s)", epoch, top1, what, c.knnK, c.knnT, knnClock.elapsed))
        try writeMetrics(.knn(epoch: epoch, step: run.globalStep, elapsed: run.clock.elapsed, top1: top1), run: run)
        run.window.restart()
    }

    /// Writes the checkpoint of `position` (rank 0, atomically: the previous checkpoints stay
    /// as they were if it fails), agreed on by every rank. -> its path.
    func save(at position: Checkpoint.Position, run: Run) throws -> String {
        let path = config.out + "/" + Checkpoint.fileName(position)
        comm.watchdog?.beat("saving \(path)")
        try comm.agree(isRoot ? Result {
            let w = Checkpoint.serialize(model: run.model, config: config, position: position, step: run.globalStep)
            try hooks.willWrite(w, to: path)
            do { try w.write(to: path) } catch { throw ConfigError("checkpoint not saved (the previous ones are kept): \(error)") }
        }.error : nil)
        run.summary.checkpoint = path
        log("saved \(path)")
        return path
    }

    /// One metrics record (rank 0: metrics.jsonl and TensorBoard), agreed on: a failed write (a
    /// full disk) stops every rank.
    func writeMetrics(_ record: MetricsRecord, run: Run) throws {
        try comm.agree(isRoot ? Result { try run.metrics?.write(record) }.error : nil)
    }

    /// Compares checksums of the method's shared state (queue and pointer, or memory bank, and
    /// the weights) across ranks.
    func checkConsistency(_ m: ContrastiveMethod, step: Int) throws {
        let state = m.sharedState
        let bad = try comm.checksumsAgree(state.map(\.checksum))
        if !bad.isEmpty {
            // `bad` is the same on every rank: stop together with one message, no abort.
            try stopTogether("consistency check failed at step \(step): \(state.map(\.name).joined(separator: ", ")) of rank(s) \(bad.map(String.init).joined(separator: ", ")) differ from rank 0")
        }
    }

    /// Stops every rank with the same error, for failures that all ranks detect identically
    /// (from reduced values): an agreed error ends the job normally with one message, where a
    /// plain throw on every rank would make each of them abort the job.
    func stopTogether(_ message: String) throws -> Never {
        let error = ConfigError(message)
        try comm.agree(error)
        throw error
    }

    // MARK: - Files

    /// Creates (or checks) the output folder (rank 0).
    func prepareOutput(resuming: Bool) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: config.out, isDirectory: &isDir) {
            guard isDir.boolValue else { throw ConfigError("--out \(config.out) exists and is not a directory") }
            if !resuming, Checkpoint.latest(in: config.out) != nil {
                throw ConfigError("--out \(config.out) already holds checkpoints; pass --resume auto to continue that run, or choose another --out")
            }
            for stale in Checkpoint.staleTemporaries(in: config.out) {
                // A write a crash interrupted: never renamed to its final name, never read.
                try? fm.removeItem(atPath: stale)
                log("removed \(stale), left by an interrupted checkpoint write")
            }
        } else {
            do { try fm.createDirectory(atPath: config.out, withIntermediateDirectories: true) }
            catch { throw ConfigError("cannot create --out \(config.out): \(error.localizedDescription)") }
        }
    }

    func writeConfig() throws {
        do { try AtomicFile.write(Array((config.jsonString() + "\n").utf8), to: config.out + "/config.json") }
        catch { throw ConfigError("cannot save the configuration: \(error)") }
    }

    static func duration(_ s: Double) -> String {
        guard s.isFinite else { return "?" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%dh%02dm", t / 3600, t % 3600 / 60) : String(format: "%dm%02ds", t / 60, t % 60)
    }
}

extension Result where Failure == Error {
    init(_ body: () throws -> Success) { do { self = .success(try body()) } catch { self = .failure(error) } }
    var error: Error? { if case .failure(let e) = self { return e }; return nil }
}

extension Dataset {
    /// The first `n` images (for quick runs).
    public func prefix(_ n: Int) -> Dataset {
        Dataset(name: name + "[:\(n)]", channels: channels, height: height, width: width,
                pixels: Array(pixels[0..<(n * imageSize)]), labels: Array(labels[0..<n]),
                numClasses: numClasses, mean: mean, std: std)
    }

    /// The last `n` images (a held-out part of a training set, with `prefix(count - n)` as the rest).
    public func suffix(_ n: Int) -> Dataset {
        let first = count - n
        return Dataset(name: name + "[\(first):]", channels: channels, height: height, width: width,
                       pixels: Array(pixels[(first * imageSize)...]), labels: Array(labels[first...]),
                       numClasses: numClasses, mean: mean, std: std)
    }
}
