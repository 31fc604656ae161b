import Foundation
import MoCoLayers
import MoCoOptim
import MoCoData

/// Every setting of a training run. Saved as `OUT/config.json` and in each checkpoint's
/// metadata; a run is determined by this configuration and the world size.
public struct TrainConfig: Codable, Equatable, Sendable {
    public var preset = "moco-v2"
    /// The step's hyperparameters: encoders, queue, m, T, BatchNorm, SGD.
    public var moco: MoCoConfig = {
        var m = MoCoConfig()
        m.bnSplits = 8   // one process emulating 8 GPUs' BatchNorm (the CLI sets 1 under mpirun)
        return m
    }()
    /// Engine workers and convolution algorithm (do not change the mathematics; results differ
    /// at rounding level between algorithms and thread counts).
    public var engine = EngineConfig()
    // Schedule
    public var epochs = 30
    /// Global batch over all ranks.
    public var batchSize = 256
    public var lr = 0.06
    public var schedule: LRSchedule = .cosine
    public var warmupEpochs = 0.0
    public var seed: UInt64 = 0
    // Data
    public var data: DatasetKind = .fashionMNIST
    public var dataDir: String? = nil
    /// Use only the first N training images (0 = all); for quick runs and tests.
    public var trainSubset = 0
    /// `--data folder`: side of the square images (nil: `ImageFolderOptions.defaultImageSize`).
    /// Optional, as the other folder settings, so configurations written before they existed
    /// still read.
    public var imageSize: Int? = nil
    /// `--data folder`: 1 or 3 channels (nil: from the data).
    public var channels: Int? = nil
    /// `--data folder`: directory of the decoded cache (nil: the data folder itself).
    public var cacheDir: String? = nil
    public var augment = AugmentConfig.mocoV2
    // Monitoring and output
    /// Also run the kNN monitor before the first step (epoch 0: the randomly initialised
    /// encoder, the baseline the training is measured against).
    public var knnAtStart: Bool? = nil
    public var knnEvery = 1
    public var knnK = 200
    public var knnT: Float = 0.1
    /// The kNN monitor on the first N training images as its bank and the first M test images
    /// (nil: all), for quick monitoring (the ablation suite, docs/ablations.md). Optional, so
    /// configurations written before them still read.
    public var knnBank: Int? = nil
    public var knnTest: Int? = nil
    /// The activation the kNN monitor reads (nil: `.backbone`, as every run before the field).
    public var knnFeatures: FeatureSpec? = nil
    public var logEvery = 10
    public var saveEvery = 1
    public var checkConsistency = 0
    public var out = "runs/moco"

    public init() {}

    /// How `--data folder` reads its images.
    public var folderOptions: ImageFolderOptions {
        ImageFolderOptions(imageSize: imageSize ?? ImageFolderOptions.defaultImageSize, channels: channels, cacheDir: cacheDir)
    }

    /// The presets, by their `--preset` names.
    public enum Preset: String, CaseIterable, Sendable {
        case mocoV2 = "moco-v2"
        case mocoV1 = "moco-v1"
        case instdisc
        case mocoV3 = "moco-v3"
        case fashionMNIST = "fashion-mnist"
    }

    /// The preset's full configuration (Fashion-MNIST-sized defaults; see docs/training.md).
    public static func preset(_ preset: Preset) -> TrainConfig {
        var c = TrainConfig()
        c.preset = preset.rawValue
        switch preset {
        case .mocoV2:
            // Chen et al. 2020: MLP head, T = 0.2, blur augmentation, cosine schedule; queue and
            // momentum scaled for a 60k-image dataset (K = 4096, m = 0.99, as the MoCo CIFAR demo).
            c.augment = .fashionMNISTV2
        case .mocoV1:
            // He et al. 2020: linear head, T = 0.07, m = 0.999, no blur, step schedule at 60% and 80%.
            c.moco.head = .linear
            c.moco.temperature = 0.07
            c.moco.momentum = 0.999
            c.lr = 0.03
            c.schedule = .step(milestones: [18, 24])
            c.augment = .mocoV1
        case .instdisc:
            // Wu et al. 2018, sec. 4: memory bank with NCE, K = 4096 noise samples, T = 0.07,
            // bank momentum 0.5, 128-d linear head, SGD lr 0.03 / momentum 0.9 / wd 5e-4, lr x0.1
            // at 60% and 80% of the run (epochs 120 and 160 of 200 there; 18 and 24 of 30 here),
            // the augmentation MoCo v1 took from it. Same encoder, batch and BN splits as the MoCo
            // presets, so a comparison changes the mechanism only.
            c.moco.mechanism = .memoryBank
            c.moco.loss = .nce
            c.moco.head = .linear
            c.moco.temperature = 0.07
            c.moco.bankMomentum = 0.5
            c.lr = 0.03
            c.schedule = .step(milestones: [18, 24])
            c.augment = .mocoV1
        case .mocoV3:
            // Chen, Xie, He 2021 (ResNet recipe of the official code): projector 2-layer MLP
            // with BN (last BN without affine), predictor 2-layer MLP, no queue (the global
            // batch's momentum keys), symmetric loss x 2T with T = 1.0, m = 0.99 raised to 1 by a
            // half cosine, LARS lr 0.6 x B/256 with wd 1e-6 and warm-up 10 of 100 epochs (here 3
            // of 30). Widths scaled to ResNet-20's 64-d features as 2048 -> 4096 -> 256 is to
            // ResNet-50's: hidden 256, output 128. No shuffle-BN (v3 relies on its batch of keys,
            // without a queue to leak through). MoCo v2's augmentation.
            c.moco.mechanism = .mocoV3
            c.moco.head = .mlpBN
            c.moco.mlpDim = 256
            c.moco.temperature = 1.0
            c.moco.momentum = 0.99
            c.moco.momentumCosine = true
            c.moco.shuffleBN = false
            c.moco.optimizer = .lars
            c.moco.weightDecay = 1e-6
            c.lr = 0.6
            c.warmupEpochs = 3
            c.augment = .fashionMNISTV2
        case .fashionMNIST:
            // The Fashion-MNIST recipe of docs/results.md ("Recipe search", "Time to accuracy"):
            // MoCo v2 with T = 0.1 (the CIFAR demo's and the parity recipe's), SimCLR's
            // colour-jitter strength 1 (brightness and contrast 0.8, MoCo v2's 0.4; +1.05 ± 0.17
            // kNN after 5 epochs, 2 seeds), and a 16-epoch cosine, which passed PyTorch's
            // 30-epoch kNN after 8 epochs. Blur as the v2 preset (σ 0.1-1).
            c.moco.temperature = 0.1
            c.augment = .fashionMNISTV2
            c.augment.setJitterStrength(1)
            c.epochs = 16
        }
        return c
    }

    /// The preset named `name`, or an error listing the choices.
    public static func preset(_ name: String) throws -> TrainConfig {
        guard let p = Preset(rawValue: name) else {
            throw ConfigError("unknown preset '\(name)' (choose \(Preset.allCases.map(\.rawValue).joined(separator: " or ")))")
        }
        return preset(p)
    }

    /// Checks every value; the same pure check runs on every rank before any collective.
    public func validate(worldSize: Int) throws {
        func need(_ ok: Bool, _ msg: @autoclosure () -> String) throws { if !ok { throw ConfigError(msg()) } }
        let m = moco
        try need(epochs > 0, "--epochs must be positive (got \(epochs))")
        try need(batchSize > 0, "--batch-size must be positive (got \(batchSize))")
        try need(batchSize % worldSize == 0, "--batch-size \(batchSize) (global) is not divisible by the \(worldSize) ranks")
        let local = batchSize / max(worldSize, 1)
        try need(m.bnSplits >= 1, "--bn-splits must be at least 1 (got \(m.bnSplits))")
        try need(local % m.bnSplits == 0, "the per-rank batch \(local) is not divisible by --bn-splits \(m.bnSplits)")
        try need(local / m.bnSplits >= 2, "each BatchNorm split needs at least 2 samples (per-rank batch \(local), --bn-splits \(m.bnSplits))")
        try need(m.queueSize > 0, "--queue-size must be positive (got \(m.queueSize))")
        try need(m.bankMomentum >= 0 && m.bankMomentum < 1, "--bank-momentum must be in [0, 1) (got \(m.bankMomentum))")
        try need(!(m.mechanism == .endToEnd && m.loss == .nce),
                 "--loss nce needs a fixed noise distribution (memory-bank or moco); end-to-end contrasts the batch with InfoNCE")
        try need(!(m.mechanism == .mocoV3 && m.loss == .nce), "--loss nce needs a fixed noise distribution (memory-bank or moco); moco-v3 contrasts the batch with InfoNCE")
        try need(m.mlpDim.map { $0 > 0 } ?? true, "--mlp-dim must be positive")
        try need(!m.symmetric || m.mechanism == .moco, "--symmetric is a MoCo loss (ctr(q1,k2) + ctr(q2,k1)); not with --mechanism \(m.mechanism.rawValue)")
        try need(m.dim > 0, "--moco-dim must be positive (got \(m.dim))")
        try need(m.momentum >= 0 && m.momentum <= 1, "--moco-m must be in [0, 1] (got \(m.momentum))")
        try need(m.temperature > 0 && m.temperature.isFinite, "--moco-t must be positive (got \(m.temperature))")
        try need(lr > 0 && lr.isFinite, "--lr must be positive (got \(lr))")
        try need(m.weightDecay >= 0, "--wd must be non-negative (got \(m.weightDecay))")
        try need(m.sgdMomentum >= 0 && m.sgdMomentum < 1, "--momentum must be in [0, 1) (got \(m.sgdMomentum))")
        try need(warmupEpochs >= 0, "--warmup-epochs must be non-negative")
        try need(knnEvery >= 0 && knnK > 0 && knnT > 0, "--knn-every must be >= 0, --knn-k and --knn-t positive")
        try need((knnBank ?? 1) > 0 && (knnTest ?? 1) > 0, "--knn-bank and --knn-test must be positive")
        _ = try (knnFeatures ?? .backbone).width(architecture: m.architecture, head: m.head, dim: m.dim)
        try need(logEvery > 0, "--log-every must be positive")
        try need(saveEvery >= 0, "--save-every must be >= 0")
        try need(trainSubset >= 0, "--train-subset must be >= 0")
        if data == .folder {
            try need(dataDir != nil, "--data folder needs --data-dir D (a folder with D/train/<class>/* and D/val/<class>/*)")
            try folderOptions.validate()
        } else {
            try need(imageSize == nil && channels == nil && cacheDir == nil,
                     "--image-size, --channels and --cache-dir apply to --data folder only (\(data.rawValue) images have a fixed size)")
        }
        try need(checkConsistency >= 0, "--check-consistency must be >= 0")
        try need(engine.threads >= 1, "--threads must be positive (got \(engine.threads))")
        if let problem = augment.problem() { throw ConfigError(problem) }
    }

    /// The settings that must match for a checkpoint to be resumed.
    public func resumeMismatches(_ other: TrainConfig) -> [String] {
        var m: [String] = []
        func cmp<T: Equatable>(_ name: String, _ a: T, _ b: T) { if a != b { m.append("\(name): checkpoint \(b), now \(a)") } }
        cmp("arch", moco.architecture.rawValue, other.moco.architecture.rawValue)
        cmp("head", moco.head.rawValue, other.moco.head.rawValue)
        cmp("moco-dim", moco.dim, other.moco.dim); cmp("queue-size", moco.queueSize, other.moco.queueSize)
        cmp("batch-size", batchSize, other.batchSize); cmp("data", data.rawValue, other.data.rawValue)
        cmp("train-subset", trainSubset, other.trainSubset); cmp("seed", seed, other.seed)
        if data == .folder || other.data == .folder {
            cmp("image-size", folderOptions.imageSize, other.folderOptions.imageSize)
            cmp("channels", channels.map(String.init) ?? "from the data", other.channels.map(String.init) ?? "from the data")
        }
        cmp("symmetric", moco.symmetric, other.moco.symmetric)
        cmp("mechanism", moco.mechanism.rawValue, other.moco.mechanism.rawValue)
        cmp("loss", moco.loss.rawValue, other.moco.loss.rawValue)
        cmp("mlp-dim", moco.mlpDim.map(String.init) ?? "default", other.moco.mlpDim.map(String.init) ?? "default")
        cmp("optimizer", moco.optimizer.rawValue, other.moco.optimizer.rawValue)
        // Only the first step reads it, but the configuration saved with every later checkpoint
        // must say how the run started.
        cmp("init", moco.initialization.rawValue, other.moco.initialization.rawValue)
        return m
    }

    public func jsonString(pretty: Bool = true) -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys] : [.sortedKeys]
        return String(decoding: (try? enc.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// Reads a configuration; also the flat layout that runs wrote before `moco` and `engine`
    /// were nested (`mocoM`, `mocoT`, `wd`, `arch`, ...), so their checkpoints still resume.
    public static func from(json: String) throws -> TrainConfig {
        let data = Data(json.utf8)
        do { return try JSONDecoder().decode(TrainConfig.self, from: data) }
        catch {
            if let legacy = try? JSONDecoder().decode(FlatTrainConfig.self, from: data) { return legacy.nested }
            throw ConfigError("cannot read the configuration: \(error)")
        }
    }
}

/// The configuration as runs wrote it before the step's hyperparameters and the engine settings
/// were nested: read only (`TrainConfig.from(json:)`).
private struct FlatTrainConfig: Decodable {
    var preset: String
    var arch: Architecture, head: HeadKind, dim: Int
    var queueSize: Int, mocoM: Float, mocoT: Float, symmetric: Bool, shuffleBN: Bool, bnSplits: Int, syncBN: Bool
    var epochs: Int, batchSize: Int, lr: Double, sgdMomentum: Float, wd: Float
    var schedule: LRSchedule, warmupEpochs: Double, seed: UInt64
    var data: DatasetKind, dataDir: String?, trainSubset: Int, augment: AugmentConfig
    var knnEvery: Int, knnK: Int, knnT: Float, logEvery: Int, saveEvery: Int, checkConsistency: Int
    var out: String, threads: Int
    var conv: ConvAlgorithm?

    var nested: TrainConfig {
        var c = TrainConfig()
        c.preset = preset
        c.moco.architecture = arch; c.moco.head = head; c.moco.dim = dim; c.moco.queueSize = queueSize
        c.moco.momentum = mocoM; c.moco.temperature = mocoT; c.moco.symmetric = symmetric
        c.moco.shuffleBN = shuffleBN; c.moco.bnSplits = bnSplits; c.moco.syncBN = syncBN
        c.moco.sgdMomentum = sgdMomentum; c.moco.weightDecay = wd
        c.engine = EngineConfig(threads: threads, conv: conv ?? EngineConfig().conv, weightGrad: .im2col, strided: .im2col)
        c.epochs = epochs; c.batchSize = batchSize; c.lr = lr; c.schedule = schedule
        c.warmupEpochs = warmupEpochs; c.seed = seed
        c.data = data; c.dataDir = dataDir; c.trainSubset = trainSubset; c.augment = augment
        c.knnEvery = knnEvery; c.knnK = knnK; c.knnT = knnT; c.logEvery = logEvery; c.saveEvery = saveEvery
        c.checkConsistency = checkConsistency; c.out = out
        c.moco.initialization = .unrecorded
        return c
    }
}

public struct ConfigError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

extension AugmentConfig {
    /// MoCo v2's augmentation adapted to 28x28 grayscale images (see docs/training.md for the
    /// sweep behind it): crops of at least 20% of the area, brightness/contrast jitter, blur with
    /// small sigma (a 3-px kernel), flips.
    public static let fashionMNISTV2: AugmentConfig = {
        var a = AugmentConfig.mocoV2
        a.blurSigmaMin = 0.1
        a.blurSigmaMax = 1.0
        return a
    }()
}
