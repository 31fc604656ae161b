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

/// `moco train`: epochs over a seeded shuffle, the learning-rate schedule, progress and metrics,
/// the kNN monitor, checkpoints and exact resume. Rank 0 writes every file; every rank runs the
/// same collectives in the same order, and every failure is agreed on before the next one.
public final class Trainer {
    public let config: TrainConfig
    public let comm: Communicator
    let say: (String) -> Void
    var metrics: FileHandle?

    public init(config: TrainConfig, comm: Communicator, say: @escaping (String) -> Void = { print($0) }) {
        self.config = config; self.comm = comm; self.say = say
    }

    var isRoot: Bool { comm.rank == 0 }
    func log(_ s: String) { if isRoot { say(s) } }

    /// The shuffle-BN permutation of step `step` of `epoch` (same on every rank).
    static func shufflePermutation(seed: UInt64, epoch: Int, step: Int, batch: Int) -> [Int] {
        var rng = Xoshiro(seed: seed, stream: [0x5342_4E, UInt64(epoch), UInt64(step)])
        return rng.permutation(batch)
    }

    public static func loadData(_ c: TrainConfig) throws -> (train: Dataset, test: Dataset) {
        let kind = DatasetKind(rawValue: c.data)!
        var train = try Dataset.load(kind, split: .train, directory: c.dataDir)
        let test = try Dataset.load(kind, split: .test, directory: c.dataDir)
        if c.trainSubset > 0 && c.trainSubset < train.count { train = train.prefix(c.trainSubset) }
        return (train, test)
    }

    /// - Parameters:
    ///   - resume: a checkpoint path, or "auto" for the newest in `config.out`.
    ///   - stopAfter: end after this many completed epochs (as an interrupted run would),
    ///     keeping the schedule of the full `config.epochs`.
    public func run(resume: String? = nil, stopAfter: Int? = nil) throws -> TrainSummary {
        let c = config, W = comm.size
        let started = now()
        // 1. Validate and load identically everywhere; agree before the first real collective.
        var faults = FaultInjection()
        let (train, test) = try comm.agreeing { () -> (Dataset, Dataset) in
            try c.validate(worldSize: W)
            faults = try FaultInjection.fromEnvironment()
            let d = try Trainer.loadData(c)
            let steps = d.train.count / c.batchSize
            if steps == 0 { throw ConfigError("the training set (\(d.train.count) images) is smaller than one global batch (\(c.batchSize))") }
            return d
        }
        var hyper = c.hyper
        hyper.inChannels = train.channels
        Conv2d.algorithm = c.convAlgorithm
        let model = MoCoModel(hyper: hyper, seed: c.seed, comm: comm)
        let sampler = EpochSampler(datasetCount: train.count, globalBatch: c.batchSize, seed: c.seed)
        let stepsPerEpoch = sampler.stepsPerEpoch

        // 2. Output folder and resume (rank 0 reads, everyone gets the bytes).
        var startEpoch = 0, globalStep = 0
        try comm.agree(isRoot ? Result { try prepareOutput(resuming: resume != nil) }.error : nil)
        if let resume {
            let bytes = try comm.agreeing { () -> [UInt8] in
                guard isRoot else { return [] }
                let path = resume == "auto" ? Checkpoint.latest(in: c.out) : resume
                guard let path else { throw ConfigError("--resume auto: no checkpoint_*.safetensors in \(c.out)") }
                log("resuming from \(path)")
                guard let data = FileManager.default.contents(atPath: path) else { throw ConfigError("cannot read checkpoint \(path)") }
                return [UInt8](data)
            }
            let all = try comm.broadcast(bytes: bytes, root: 0)
            let info = try comm.agreeing { () -> Checkpoint.Info in
                let f = try SafeTensorsFile(bytes: all, path: resume)
                let info = try Checkpoint.info(f)
                let mismatches = c.resumeMismatches(info.config)
                if !mismatches.isEmpty {
                    throw ConfigError("checkpoint does not match this configuration: " + mismatches.joined(separator: "; "))
                }
                if info.epoch > c.epochs { throw ConfigError("checkpoint is at epoch \(info.epoch), beyond --epochs \(c.epochs)") }
                if info.config.convAlgorithm != c.convAlgorithm {
                    // Allowed (a user may switch), but the continuation then differs from the
                    // uninterrupted run by the algorithms' rounding.
                    log("note: the checkpoint was trained with --conv \(info.config.convAlgorithm.rawValue), this run uses "
                        + "\(c.convAlgorithm.rawValue); results will differ from an uninterrupted run at rounding level")
                }
                try Checkpoint.restore(f, into: model)
                return info
            }
            startEpoch = info.epoch; globalStep = info.step
            log("resumed at epoch \(startEpoch) (step \(globalStep))")
        }
        if isRoot { try writeConfig() }

        log("moco train: \(c.preset), \(c.arch.rawValue) + \(c.head.rawValue) head on \(train.name) (\(train.count) images), "
            + "\(W) rank(s) x \(BLAS.threads) BLAS thread(s), global batch \(c.batchSize), \(stepsPerEpoch) steps/epoch, "
            + "K=\(c.queueSize) m=\(c.mocoM) T=\(c.mocoT) bn-splits=\(c.bnSplits)\(c.shuffleBN ? " shuffle-BN" : "")\(c.syncBN ? " sync-BN" : ""), "
            + "conv \(c.convAlgorithm.rawValue)")

        let local = c.batchSize / W
        model.plan(localBatch: local, channels: train.channels, height: train.height, width: train.width)
        let extractor = FeatureExtractor(architecture: c.arch, head: c.head, inChannels: train.channels, dim: c.dim,
                                         height: train.height, width: train.width)
        var summary = TrainSummary()
        summary.epochsDone = startEpoch
        let loader = try TwoCropLoader(dataset: train, sampler: sampler, config: c.augment, seed: c.seed,
                                       rank: comm.rank, worldSize: W, startEpoch: startEpoch, startStep: 0,
                                       endEpoch: min(c.epochs, stopAfter ?? c.epochs))
        defer { loader.stop() }

        var windowStart = now(), windowImages = 0
        var lossSum = 0.0, accSum = 0.0, windowSteps = 0
        let endEpoch = min(c.epochs, stopAfter ?? c.epochs)
        for epoch in startEpoch..<endEpoch {
            for step in 0..<stepsPerEpoch {
                if let f = faults.failAt, f.rank == comm.rank, f.step == globalStep + 1 {
                    throw ConfigError("injected failure (MOCO_FAIL_AT) on rank \(comm.rank) at step \(globalStep + 1)")
                }
                guard let batch = try loader.next() else { throw ConfigError("data loader ended early at epoch \(epoch) step \(step)") }
                precondition(batch.epoch == epoch && batch.step == step)
                let t = Double(epoch) + Double(step) / Double(stepsPerEpoch)
                let lr = Float(c.schedule.lr(base: c.lr, epoch: t, totalEpochs: c.epochs, warmupEpochs: c.warmupEpochs))
                let perm = Trainer.shufflePermutation(seed: c.seed, epoch: epoch, step: step, batch: c.batchSize)
                let r = try withExtendedLifetime(batch) {
                    try model.step(imQ: batch.query.ptr, imK: batch.key.ptr, perm: perm, lr: lr)
                }
                globalStep += 1
                if let p = faults.perturbQueueAt, p.rank == comm.rank, p.step == globalStep {
                    model.queue.keys.ptr[0] += 1e-3
                }
                windowImages += c.batchSize; windowSteps += 1
                lossSum += r.loss; accSum += r.acc1
                let last = step == stepsPerEpoch - 1
                if globalStep % c.logEvery == 0 || last {
                    // Mean over ranks; a non-finite loss anywhere stops the run before any save.
                    var v = [lossSum, accSum]
                    try comm.allreduce(&v, op: .sum)
                    let loss = v[0] / Double(W * windowSteps), acc = v[1] / Double(W * windowSteps)
                    if !loss.isFinite {
                        // Every rank sees the same reduced loss: stop together, one message.
                        try stopTogether("loss became \(loss) at epoch \(epoch + 1) step \(step + 1); stopped without saving, the last good checkpoint is kept"
                                          + (summary.checkpoint.map { " (\($0))" } ?? ""))
                    }
                    let dt = now() - windowStart
                    let ips = Double(windowImages) / max(dt, 1e-9)
                    let remaining = Double((c.epochs - epoch) * stepsPerEpoch - step - 1) * Double(c.batchSize) / max(ips, 1e-9)
                    log(String(format: "epoch %d/%d step %d/%d  loss %.4f  acc1 %.1f%%  lr %.5f  %.0f img/s  ETA %@",
                               epoch + 1, c.epochs, step + 1, stepsPerEpoch, loss, acc, lr, ips, Trainer.duration(remaining)))
                    writeMetric(["type": "train", "epoch": epoch, "step": globalStep, "loss": loss, "acc1": acc, "lr": Double(lr),
                                 "images_per_s": ips, "elapsed_s": now() - started])
                    summary.lastLoss = loss
                    windowStart = now(); windowImages = 0; windowSteps = 0; lossSum = 0; accSum = 0
                }
                if c.checkConsistency > 0 && globalStep % c.checkConsistency == 0 {
                    try checkConsistency(model, step: globalStep)
                }
            }
            summary.epochsDone = epoch + 1
            summary.steps = globalStep
            if c.knnEvery > 0 && ((epoch + 1) % c.knnEvery == 0 || epoch + 1 == endEpoch) {
                let t0 = now()
                extractor.encoder.copyState(from: model.query)
                let top1 = try DistributedKNN.top1(train: train, test: test, dim: extractor.featureDim, k: c.knnK, t: c.knnT,
                                                   comm: comm) { ds, idx in extractor.features(ds, indices: idx) }
                summary.knn.append((epoch + 1, top1, now() - started))
                log(String(format: "epoch %d: kNN top-1 %.2f%% (k=%d, t=%.2f; %.1f s)", epoch + 1, top1, c.knnK, c.knnT, now() - t0))
                writeMetric(["type": "knn", "epoch": epoch + 1, "step": globalStep, "knn_top1": top1, "elapsed_s": now() - started])
                windowStart = now(); windowImages = 0
            }
            if (c.saveEvery > 0 && (epoch + 1) % c.saveEvery == 0) || epoch + 1 == endEpoch {
                let path = c.out + "/" + Checkpoint.fileName(epoch: epoch + 1)
                try comm.agree(isRoot ? Result {
                    try Checkpoint.serialize(model: model, config: c, epoch: epoch + 1, step: globalStep).write(to: path)
                }.error : nil)
                summary.checkpoint = path
                log("saved \(path)")
            }
        }
        summary.seconds = now() - started
        try? metrics?.close()
        return summary
    }

    /// Compares checksums of the queue, its pointer and both encoders' weights across ranks.
    func checkConsistency(_ m: MoCoModel, step: Int) throws {
        func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Double { var s = 0.0; for i in 0..<n { s += Double(p[i]) * Double(i % 7 + 1) }; return s }
        let values = [sum(m.queue.keys.ptr, m.queue.keys.count), Double(m.queue.pointer),
                      sum(m.query.params.values.ptr, m.query.params.count), sum(m.key.params.values.ptr, m.key.params.count)]
        let bad = try comm.checksumsAgree(values)
        if !bad.isEmpty {
            // `bad` is the same on every rank: stop together with one message, no abort.
            try stopTogether("consistency check failed at step \(step): queue, pointer or weights of rank(s) \(bad.map(String.init).joined(separator: ", ")) differ from rank 0")
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

    func prepareOutput(resuming: Bool) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: config.out, isDirectory: &isDir) {
            guard isDir.boolValue else { throw ConfigError("--out \(config.out) exists and is not a directory") }
            if !resuming, Checkpoint.latest(in: config.out) != nil {
                throw ConfigError("--out \(config.out) already holds checkpoints; pass --resume auto to continue that run, or choose another --out")
            }
        } else {
            do { try fm.createDirectory(atPath: config.out, withIntermediateDirectories: true) }
            catch { throw ConfigError("cannot create --out \(config.out): \(error.localizedDescription)") }
        }
        let mpath = config.out + "/metrics.jsonl"
        if !fm.fileExists(atPath: mpath) { _ = fm.createFile(atPath: mpath, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: mpath) else { throw ConfigError("cannot write \(mpath)") }
        h.seekToEndOfFile()
        metrics = h
    }

    func writeConfig() throws {
        try AtomicFile.write(Array((config.jsonString() + "\n").utf8), to: config.out + "/config.json")
    }

    func writeMetric(_ fields: [String: Any]) {
        guard isRoot, let metrics else { return }
        if let d = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]) {
            metrics.write(d); metrics.write(Data("\n".utf8))
        }
    }

    static func duration(_ s: Double) -> String {
        guard s.isFinite else { return "?" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%dh%02dm", t / 3600, t % 3600 / 60) : String(format: "%dm%02ds", t / 60, t % 60)
    }
}

/// Test hooks read from the environment, for exercising the failure paths of a distributed run
/// (see docs/distributed.md). Unset variables change nothing.
struct FaultInjection {
    /// `MOCO_FAIL_AT=R:S`: rank R throws a local (not agreed) error just before global step S
    /// (1-based), so the other ranks are left inside that step's collectives and the job must abort.
    var failAt: (rank: Int, step: Int)?
    /// `MOCO_PERTURB_QUEUE_AT=R:S`: rank R changes one entry of its queue after global step S, so
    /// `--check-consistency` must catch the divergence.
    var perturbQueueAt: (rank: Int, step: Int)?

    static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> FaultInjection {
        func parse(_ name: String) throws -> (rank: Int, step: Int)? {
            guard let v = env[name], !v.isEmpty else { return nil }
            let parts = v.split(separator: ":", omittingEmptySubsequences: false).map { Int($0) }
            guard parts.count == 2, let r = parts[0], let s = parts[1], r >= 0, s >= 1 else {
                throw ConfigError("\(name)='\(v)' must be RANK:STEP (rank >= 0, global step >= 1)")
            }
            return (r, s)
        }
        return FaultInjection(failAt: try parse("MOCO_FAIL_AT"), perturbQueueAt: try parse("MOCO_PERTURB_QUEUE_AT"))
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
}
