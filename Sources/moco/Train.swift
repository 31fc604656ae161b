import ArgumentParser
import Foundation
import MoCo
import MoCoLayers
import MoCoOptim

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train MoCo (v1 or v2) on Fashion-MNIST, MNIST, CIFAR-10 or the built-in synthetic set.",
        discussion: "A preset sets every hyperparameter; any flag given overrides it. The effective configuration is printed and saved as OUT/config.json.")

    @Option(help: "moco-v1 or moco-v2.") var preset = "moco-v2"
    @Option(help: "Number of epochs.") var epochs: Int?
    @Option(help: "Global batch size (over all ranks).") var batchSize: Int?
    @Option(help: "Base learning rate.") var lr: Double?
    @Option(help: "Weight decay.") var wd: Float?
    @Option(help: "SGD momentum.") var momentum: Float?
    @Option(help: "lr schedule: cosine, or step:E1,E2 (x0.1 at each milestone epoch).") var schedule: String?
    @Option(help: "Linear warm-up epochs.") var warmupEpochs: Double?
    @Option(help: "Queue size K (number of negative keys).") var queueSize: Int?
    @Option(help: "Key encoder momentum m.") var mocoM: Float?
    @Option(help: "Softmax temperature T.") var mocoT: Float?
    @Option(help: "Feature dimension of the projection.") var mocoDim: Int?
    @Option(help: "resnet20 or resnet18.") var arch: String?
    @Option(help: "Projection head: mlp (v2) or linear (v1).") var head: String?
    @Flag(help: "Symmetrised loss ctr(q1,k2) + ctr(q2,k1) (MoCo CIFAR demo, MoCo v3).") var symmetric = false
    @Option(help: "BatchNorm splits per rank: statistics over S sub-batches (default 8 on one process, 1 per rank under mpirun).") var bnSplits: Int?
    @Flag(help: "Disable shuffle-BN (ablation).") var noShuffleBn = false
    @Flag(help: "Synchronise the query encoder's BatchNorm statistics across ranks.") var syncBn = false
    @Option(help: "fashion-mnist, mnist, cifar10 or synthetic.") var data: String?
    @Option(help: "Directory of the dataset files.") var dataDir: String?
    @Option(help: "Train on the first N images only (0 = all).") var trainSubset: Int?
    @Option(help: "RandomResizedCrop minimum area fraction.") var cropMinScale: Float?
    @Option(help: "Probability of Gaussian blur.") var blurProb: Float?
    @Option(help: "Maximum blur sigma.") var blurSigmaMax: Float?
    @Option(help: "Probability of colour jitter.") var jitterProb: Float?
    @Option(help: "Random seed.") var seed: UInt64?
    @Option(help: "Output folder (config, metrics.jsonl, checkpoints).") var out: String?
    @Option(help: "Log every N steps.") var logEvery: Int?
    @Option(help: "Checkpoint every E epochs (and at the end).") var saveEvery: Int?
    @Option(help: "kNN monitor every E epochs (0 = only... never).") var knnEvery: Int?
    @Option(help: "kNN neighbours.") var knnK: Int?
    @Option(help: "kNN temperature.") var knnT: Float?
    @Option(help: "Verify queue and weights agree across ranks every N steps (0 = off).") var checkConsistency: Int?
    @Option(help: "Resume from a checkpoint path, or 'auto' for the latest in --out.") var resume: String?
    @Option(help: "BLAS threads per rank (default: cores / ranks on the node).") var threads: Int?
    @Option(help: "3x3 stride-1 convolutions: winograd4 (default), winograd2 or im2col.") var conv: String?
    @Option(help: "Stop after this many epochs (keeping the --epochs schedule), as an interrupted run would; for testing --resume.") var stopAfter: Int?
    @Flag(help: "Print the effective configuration and exit.") var dryRun = false

    func configuration(worldSize: Int) throws -> TrainConfig {
        var c = try TrainConfig.preset(preset)
        if worldSize > 1 { c.bnSplits = 1 }   // shuffle-BN across ranks replaces emulated splits
        if let epochs { c.epochs = epochs }
        if let batchSize { c.batchSize = batchSize }
        if let lr { c.lr = lr }
        if let wd { c.wd = wd }
        if let momentum { c.sgdMomentum = momentum }
        if let schedule { c.schedule = try parseSchedule(schedule) }
        if let warmupEpochs { c.warmupEpochs = warmupEpochs }
        if let queueSize { c.queueSize = queueSize }
        if let mocoM { c.mocoM = mocoM }
        if let mocoT { c.mocoT = mocoT }
        if let mocoDim { c.dim = mocoDim }
        if let arch { c.arch = try parseArch(arch) }
        if let head { c.head = try parseHead(head) }
        if symmetric { c.symmetric = true }
        if let bnSplits { c.bnSplits = bnSplits }
        if noShuffleBn { c.shuffleBN = false }
        if syncBn { c.syncBN = true }
        if let data { c.data = data }
        if let dataDir { c.dataDir = dataDir }
        if let trainSubset { c.trainSubset = trainSubset }
        if let cropMinScale { c.augment.cropScaleMin = cropMinScale }
        if let blurProb { c.augment.blurProb = blurProb }
        if let blurSigmaMax { c.augment.blurSigmaMax = blurSigmaMax }
        if let jitterProb { c.augment.jitterProb = jitterProb }
        if let seed { c.seed = seed }
        c.out = out ?? "runs/\(c.preset)-\(c.data)"
        if let logEvery { c.logEvery = logEvery }
        if let saveEvery { c.saveEvery = saveEvery }
        if let knnEvery { c.knnEvery = knnEvery }
        if let knnK { c.knnK = knnK }
        if let knnT { c.knnT = knnT }
        if let checkConsistency { c.checkConsistency = checkConsistency }
        if let threads { c.threads = threads }
        c.conv = conv ?? Conv2d.algorithm.rawValue   // recorded in the run's configuration
        return c
    }

    func run() throws {
        Runtime.run(threads: threads) { comm in
            let c = try comm.agreeing { try configuration(worldSize: comm.size) }
            say(comm, "configuration:\n" + c.jsonString())
            if dryRun { try comm.agreeing { try c.validate(worldSize: comm.size) }; return }
            let summary = try Trainer(config: c, comm: comm, say: emit).run(resume: resume, stopAfter: stopAfter)
            say(comm, String(format: "done: %d epochs, %d steps in %.1f s; last loss %.4f", summary.epochsDone, summary.steps,
                             summary.seconds, summary.lastLoss)
                + (summary.knn.last.map { String(format: "; kNN top-1 %.2f%%", $0.top1) } ?? "")
                + (summary.checkpoint.map { "; checkpoint \($0)" } ?? ""))
        }
    }
}

func parseSchedule(_ s: String) throws -> LRSchedule {
    if s == "cosine" { return .cosine }
    if s.hasPrefix("step:") {
        let ms = s.dropFirst(5).split(separator: ",").map { Int($0) }
        guard !ms.isEmpty, ms.allSatisfy({ $0 != nil }) else { throw ValidationError("--schedule step:E1,E2 needs integer epochs") }
        return .step(milestones: ms.map { $0! })
    }
    throw ValidationError("unknown --schedule '\(s)' (cosine or step:E1,E2)")
}
