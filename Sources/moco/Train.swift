import ArgumentParser
import Foundation
import MoCo
import MoCoData
import MoCoLayers
import MoCoOptim
import MoCoComm
import CSignals

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train MoCo (v1, v2, v3), InstDisc's memory bank or end-to-end on Fashion-MNIST, MNIST, CIFAR-10, an image folder (PNG, JPEG) or the built-in synthetic set.",
        discussion: "A preset sets every hyperparameter; any flag given overrides it. The effective configuration is printed and saved as OUT/config.json; --config OUT/config.json runs it again (flags given with it override it).")

    @Option(help: "Hyperparameter preset (default: the --config file's \"preset\", else moco-v2).") var preset: TrainConfig.Preset?
    @Option(help: ArgumentHelp("A configuration to run, as OUT/config.json saves it (all or some of its keys; the others from its preset); flags given with it override it.", valueName: "file")) var config: String?
    @Option(help: "Number of epochs.") var epochs: Int?
    @Option(help: "Global batch size (over all ranks).") var batchSize: Int?
    @Option(help: "Base learning rate.") var lr: Double?
    @Option(help: "Weight decay.") var wd: Float?
    @Option(help: "SGD momentum.") var momentum: Float?
    @Option(help: "lr schedule: cosine, or step:E1,E2 (x0.1 at each milestone epoch).") var schedule: LRSchedule?
    @Option(help: "Linear warm-up epochs.") var warmupEpochs: Double?
    @Option(help: "Where the negatives come from: moco (momentum encoder + queue), memory-bank (InstDisc), end-to-end (the batch's keys, gradients through them), moco-v3 (the batch's momentum keys, predictor).") var mechanism: Mechanism?
    @Option(help: "Contrastive loss: infonce, or nce (InstDisc's NCE with fixed Z; moco and memory-bank).") var loss: ContrastLoss?
    @Option(help: "Optimizer: sgd, or lars (MoCo v3; for large global batches).") var optimizer: OptimizerKind?
    @Flag(help: "Raise the key momentum from --moco-m to 1 by a half cosine over the run (MoCo v3).") var mocoMCos = false
    @Option(help: "Hidden width of the mlp-bn projector and the moco-v3 predictor.") var mlpDim: Int?
    @Option(help: "Memory-bank momentum m_b of v <- normalize(m_b v + (1 - m_b) f).") var bankMomentum: Float?
    @Option(help: "K, the negatives per query: queue size (moco) or bank samples per query (memory-bank).") var queueSize: Int?
    @Option(help: "Key encoder momentum m.") var mocoM: Float?
    @Option(help: "Softmax temperature T.") var mocoT: Float?
    @Option(help: "Feature dimension of the projection.") var mocoDim: Int?
    @Option(help: "Encoder.") var arch: Architecture?
    @Option(help: "Projection head: mlp (v2), linear (v1) or mlp-bn (v3's projector).") var head: HeadKind?
    @Option(help: "Initial convolution weights: torchvision's Kaiming-normal fan_out, or PyTorch's nn.Conv2d default U(±1/sqrt(fan_in)) (docs/training.md).") var `init`: InitScheme?
    @Flag(help: "Symmetrised loss ctr(q1,k2) + ctr(q2,k1) (MoCo CIFAR demo, MoCo v3).") var symmetric = false
    @Option(help: "BatchNorm splits per rank: statistics over S sub-batches (default 8 on one process, 1 per rank under mpirun).") var bnSplits: Int?
    @Flag(help: "Disable shuffle-BN (ablation).") var noShuffleBn = false
    @Flag(help: "Synchronise the query encoder's BatchNorm statistics across ranks.") var syncBn = false
    @Option(help: "Dataset.") var data: DatasetKind?
    @Option(help: "Directory of the dataset files.") var dataDir: String?
    @Option(help: "Train on the first N images only (0 = all).") var trainSubset: Int?
    @Option(help: "--data folder: side of the square images; each image's shorter side is resized to it (antialiased) and the centre cropped (default 32).") var imageSize: Int?
    @Option(help: "--data folder: 1 (colour made grey by BT.601 luma) or 3 (grey repeated); default: 1 if every image is grey, else 3.") var channels: Int?
    @Option(help: "--data folder: directory for the decoded cache (default: the data folder, D/.moco-cache-*).") var cacheDir: String?
    @Option(help: "RandomResizedCrop minimum area fraction.") var cropMinScale: Float?
    @Option(help: "RandomResizedCrop maximum area fraction.") var cropMaxScale: Float?
    @Option(help: "RandomResizedCrop smallest aspect ratio w/h (log-uniform; default 3/4).") var cropRatioMin: Float?
    @Option(help: "RandomResizedCrop largest aspect ratio w/h (default 4/3).") var cropRatioMax: Float?
    @Option(help: "Probability of the horizontal flip.") var flipProb: Float?
    @Option(help: "Colour jitter strength s (SimCLR): brightness, contrast and saturation 0.8·s, hue 0.2·s; MoCo v2's 0.4/0.4/0.4/0.1 is s = 0.5.") var jitterStrength: Float?
    @Option(help: "Probability of Gaussian blur.") var blurProb: Float?
    @Option(help: "Maximum blur sigma.") var blurSigmaMax: Float?
    @Option(help: "Blur support: auto (10% of the side, torchvision GaussianBlur), full (3 sigma, edges replicated, as Pillow's blur in MoCo's loader) or an odd size.") var blurKernel: BlurKernel?
    @Option(help: "Probability of colour jitter.") var jitterProb: Float?
    @Option(help: "Random seed.") var seed: UInt64?
    @Option(help: "Output folder (config, metrics.jsonl, checkpoints).") var out: String?
    @Option(help: "Log every N steps.") var logEvery: Int?
    @Option(help: "Checkpoint every E epochs (and at the end).") var saveEvery: Int?
    @Option(help: "kNN monitor every E epochs (0 = never).") var knnEvery: Int?
    @Flag(help: "Also run the kNN monitor before the first step (epoch 0: the randomly initialised encoder, the baseline).") var knnAtStart = false
    @Option(help: "kNN monitor features: backbone (pooled, default), gridG (the last map pooled to a GxG grid, e.g. grid4), stageS or stageS-gridG (the output of stage S pooled, e.g. stage2-grid4), hidden (the mlp head's hidden layer) or projection (the head's output); or several joined by + (each part L2-normalised, weighted by an optional @W, concatenated: stage2-grid7+backbone@0.5).") var knnFeatures: FeatureSpec?
    @Option(help: "kNN neighbours.") var knnK: Int?
    @Option(help: "kNN temperature.") var knnT: Float?
    @Option(help: "kNN monitor: the first N training images as the bank (default all).") var knnBank: Int?
    @Option(help: "kNN monitor: the first N test images (default all).") var knnTest: Int?
    @Option(help: "Verify queue and weights agree across ranks every N steps (0 = off).") var checkConsistency: Int?
    @Option(help: "Every N steps, log the mean cosine between a sample of the stored negatives (queue or bank entries) and the current encoder's keys of the same crops, and their mean age (metrics.jsonl type consistency; 0 = off).") var logConsistency = 0
    @Option(help: "Entries measured by --log-consistency.") var consistencySample = 256
    @Option(help: "Resume from a checkpoint path, or 'auto' for the latest in --out.") var resume: String?
    @Option(help: "Engine threads per rank (default: cores / ranks on the node).") var threads: Int?
    @Option(help: "3x3 stride-1 convolutions (default: MOCO_CONV, else winograd4).") var conv: ConvAlgorithm?
    @Option(name: .customLong("conv-dw"), help: "Weight gradient of the Winograd convolutions (default: MOCO_CONV_DW, else winograd).") var convDW: WeightGradAlgorithm?
    @Option(name: .customLong("conv-strided"), help: "Forward of the strided 3x3 convolutions: direct (AVX2 kernel, no im2col columns) or im2col (default: MOCO_CONV_STRIDED, else direct).") var convStrided: StridedConvAlgorithm?
    @Option(help: "Seconds a collective (or, on one process, a step) may take before the watchdog ends the whole job, naming the step, the operation and the ranks missing from it (0 = no watchdog).") var collectiveTimeout: Double = Train.defaultCollectiveTimeout
    @Option(help: "Stop after this many epochs (keeping the --epochs schedule), as an interrupted run would; for testing --resume.") var stopAfter: Int?
    @Option(help: ArgumentHelp("Write a Chrome trace (Perfetto, chrome://tracing) of each rank's steps, phases, data waits, collectives and gradient-bucket allreduces to FILE (FILE.rankR.json under mpirun; an existing file is not replaced; docs/performance.md, \"Timeline\").", valueName: "file")) var timeline: String?
    @Option(help: Runtime.progressThreadHelp) var progressThread = 0
    @Flag(help: "Print the effective configuration and exit.") var dryRun = false

    /// Ten minutes: far above any step or checkpoint of a sane configuration, short next to a
    /// job's allocation.
    static let defaultCollectiveTimeout = 600.0

    /// The effective configuration: the preset (`--preset`, or the one `file` names), then the
    /// settings of `file` (`--config`), then every flag given.
    func configuration(worldSize: Int, file: TrainConfigFile? = nil) throws -> TrainConfig {
        let named = try file?.preset()
        if let preset, let named, named != preset.rawValue {
            throw ValidationError("--preset \(preset.rawValue) and --config \(file!.name) (preset \"\(named)\") name different presets; give one")
        }
        var c: TrainConfig
        do { c = try named.map { try TrainConfig.preset($0) } ?? TrainConfig.preset(preset ?? .mocoV2) }
        catch { throw ConfigError("--config \(file!.name): preset: \(error)") }
        if worldSize > 1 { c.moco.bnSplits = 1 }   // shuffle-BN across ranks replaces emulated splits
        // Engine defaults (cores / ranks, --conv else MOCO_CONV, chunk sizes), under the file's
        // engine settings; recorded in the run's configuration.
        c.engine = try Runtime.engine(threads: nil, conv: conv, weightGrad: convDW, strided: convStrided)
        if let file { c = try file.decode(over: c) }
        if let epochs { c.epochs = epochs }
        if let batchSize { c.batchSize = batchSize }
        if let lr { c.lr = lr }
        if let wd { c.moco.weightDecay = wd }
        if let momentum { c.moco.sgdMomentum = momentum }
        if let schedule { c.schedule = schedule }
        if let warmupEpochs { c.warmupEpochs = warmupEpochs }
        if let mechanism { c.moco.mechanism = mechanism }
        if let loss { c.moco.loss = loss }
        if let bankMomentum { c.moco.bankMomentum = bankMomentum }
        if let optimizer { c.moco.optimizer = optimizer }
        if mocoMCos { c.moco.momentumCosine = true }
        if let mlpDim { c.moco.mlpDim = mlpDim }
        if let queueSize { c.moco.queueSize = queueSize }
        if let mocoM { c.moco.momentum = mocoM }
        if let mocoT { c.moco.temperature = mocoT }
        if let mocoDim { c.moco.dim = mocoDim }
        if let arch { c.moco.architecture = arch }
        if let head { c.moco.head = head }
        if let `init` { c.moco.initialization = `init` }
        if symmetric { c.moco.symmetric = true }
        if let bnSplits { c.moco.bnSplits = bnSplits }
        if noShuffleBn { c.moco.shuffleBN = false }
        if syncBn { c.moco.syncBN = true }
        if let data { c.data = data }
        if let dataDir { c.dataDir = dataDir }
        if let trainSubset { c.trainSubset = trainSubset }
        if let imageSize { c.imageSize = imageSize }
        if let channels { c.channels = channels }
        if let cacheDir { c.cacheDir = cacheDir }
        if let cropMinScale { c.augment.cropScaleMin = cropMinScale }
        if let cropMaxScale { c.augment.cropScaleMax = cropMaxScale }
        if let cropRatioMin { c.augment.ratioMin = cropRatioMin }
        if let cropRatioMax { c.augment.ratioMax = cropRatioMax }
        if let flipProb { c.augment.flipProb = flipProb }
        if let jitterStrength { c.augment.setJitterStrength(jitterStrength) }
        if let blurProb { c.augment.blurProb = blurProb }
        if let blurSigmaMax { c.augment.blurSigmaMax = blurSigmaMax }
        if let blurKernel { c.augment.blurKernel = blurKernel }
        if let jitterProb { c.augment.jitterProb = jitterProb }
        if let seed { c.seed = seed }
        if let out { c.out = out } else if !(file?.sets("out") ?? false) { c.out = "runs/\(c.preset)-\(c.data.rawValue)" }
        if let logEvery { c.logEvery = logEvery }
        if let saveEvery { c.saveEvery = saveEvery }
        if let knnEvery { c.knnEvery = knnEvery }
        if knnAtStart { c.knnAtStart = true }
        if let knnFeatures { c.knnFeatures = knnFeatures }
        if let knnK { c.knnK = knnK }
        if let knnT { c.knnT = knnT }
        if let knnBank { c.knnBank = knnBank }
        if let knnTest { c.knnTest = knnTest }
        if let checkConsistency { c.checkConsistency = checkConsistency }
        if let threads { c.engine.threads = threads > 0 ? threads : Runtime.defaultThreads() }
        if let conv { c.engine.conv = conv }
        if let convDW { c.engine.weightGrad = convDW }
        if let convStrided { c.engine.strided = convStrided }
        return c
    }

    func run() throws {
        Runtime.run { comm in
            // Rank 0 reads --config; every rank parses the same bytes, so all agree on any error.
            let fileBytes = try config.map { path in
                try comm.broadcast(bytes: try comm.agreeing { comm.rank == 0 ? try TrainConfigFile.read(path: path) : [] }, root: 0)
            }
            let (c, faults) = try comm.agreeing { () -> (TrainConfig, FaultInjection) in
                guard collectiveTimeout >= 0, collectiveTimeout.isFinite else {
                    throw ValidationError("--collective-timeout must be >= 0 seconds (0 = off), got \(collectiveTimeout)")
                }
                try Runtime.validateProgressThread(progressThread)
                let file = try config.flatMap { path in try fileBytes.map { try TrainConfigFile(bytes: $0, name: path) } }
                return (try configuration(worldSize: comm.size, file: file), try FaultInjection.fromEnvironment())
            }
            let consistency = logConsistency != 0 ? ConsistencyLogging(every: logConsistency, sample: consistencySample) : nil
            try comm.agreeing { try consistency?.validate(mechanism: c.moco.mechanism) }
            say(comm, "configuration:\n" + c.jsonString())
            if dryRun { try comm.agreeing { try c.validate(worldSize: comm.size) }; return }
            if collectiveTimeout > 0 { Runtime.installWatchdog(comm, timeout: collectiveTimeout) }
            try comm.agreeing { try Runtime.startProgressThread(comm, microseconds: progressThread) }
            // SIGTERM, SIGINT, SIGUSR1: finish the step, save, exit 75 (a second signal exits at once).
            try comm.agreeing {
                if moco_signals_install() != 0 { throw ConfigError("cannot install signal handlers: \(String(cString: strerror(errno)))") }
            }
            let trace = try timeline.map { try Timeline.open($0, comm: comm) }
            defer { trace?.close() }
            let summary = try Trainer(config: c, comm: trace.map { TracingCommunicator(comm, timeline: $0) } ?? comm, hooks: faults,
                                      stops: SignalStops(), say: emit, consistency: consistency, timeline: trace)
                .run(resume: resume, stopAfter: stopAfter)
            say(comm, String(format: "done: %d epochs, %d steps in %.1f s; last loss %.4f", summary.epochsDone, summary.steps,
                             summary.seconds, summary.lastLoss)
                + (summary.knn.last.map { String(format: "; kNN top-1 %.2f%%", $0.top1) } ?? "")
                + (summary.knn.count > 1 && summary.knn[0].epoch == 0
                   ? String(format: " (random-initialised encoder %.2f%%)", summary.knn[0].top1) : "")
                + (summary.checkpoint.map { "; checkpoint \($0)" } ?? ""))
            if let trace { say(comm, "timeline: \(Timeline.path(trace.path, rank: 0, size: 1))\(comm.size > 1 ? " (rank 0; one file per rank)" : "") — open it in ui.perfetto.dev or chrome://tracing") }
        }
    }
}

/// Stop requests from the signal handlers of `CSignals`.
struct SignalStops: StopRequests {
    func pending() -> Int32 { moco_signal_pending() }
}
