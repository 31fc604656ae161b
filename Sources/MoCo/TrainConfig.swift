import Foundation
import MoCoLayers
import MoCoOptim
import MoCoData

/// Every setting of a training run. Saved as `OUT/config.json` and in each checkpoint's
/// metadata; a run is determined by this configuration and the world size.
public struct TrainConfig: Codable, Equatable, Sendable {
    public var preset = "moco-v2"
    // Model
    public var arch: Architecture = .resnet20
    public var head: HeadKind = .mlp
    public var dim = 128
    // MoCo
    public var queueSize = 4096
    public var mocoM: Float = 0.99
    public var mocoT: Float = 0.2
    public var symmetric = false
    public var shuffleBN = true
    /// BatchNorm splits per rank (1 = plain BN over the rank's batch).
    public var bnSplits = 8
    public var syncBN = false
    // Optimisation
    public var epochs = 30
    /// Global batch over all ranks.
    public var batchSize = 256
    public var lr = 0.06
    public var sgdMomentum: Float = 0.9
    public var wd: Float = 5e-4
    public var schedule: LRSchedule = .cosine
    public var warmupEpochs = 0.0
    public var seed: UInt64 = 0
    // Data
    public var data = "fashion-mnist"
    public var dataDir: String? = nil
    /// Use only the first N training images (0 = all); for quick runs and tests.
    public var trainSubset = 0
    public var augment = AugmentConfig.mocoV2
    // Monitoring and output
    public var knnEvery = 1
    public var knnK = 200
    public var knnT: Float = 0.1
    public var logEvery = 10
    public var saveEvery = 1
    public var checkConsistency = 0
    public var out = "runs/moco"
    public var threads = 0
    /// Algorithm of the 3x3 stride-1 convolutions (`ConvAlgorithm` raw value); nil: the build's
    /// default (`Conv2d.algorithm`, winograd4 unless MOCO_CONV says otherwise). Optional so
    /// that configurations written before it existed still load.
    public var conv: String? = nil

    public init() {}

    /// The convolution algorithm this configuration asks for.
    public var convAlgorithm: ConvAlgorithm { conv.flatMap { ConvAlgorithm(rawValue: $0) } ?? Conv2d.algorithm }

    /// The preset's full configuration (Fashion-MNIST-sized defaults; see docs/training.md).
    public static func preset(_ name: String) throws -> TrainConfig {
        var c = TrainConfig()
        switch name {
        case "moco-v2":
            // Chen et al. 2020: MLP head, T = 0.2, blur augmentation, cosine schedule; queue and
            // momentum scaled for a 60k-image dataset (K = 4096, m = 0.99, as the MoCo CIFAR demo).
            c.preset = name
            c.augment = .fashionMNISTV2
        case "moco-v1":
            // He et al. 2020: linear head, T = 0.07, m = 0.999, no blur, step schedule at 60% and 80%.
            c.preset = name
            c.head = .linear
            c.mocoT = 0.07
            c.mocoM = 0.999
            c.lr = 0.03
            c.schedule = .step(milestones: [18, 24])
            c.augment = .mocoV1
        default:
            throw ConfigError("unknown preset '\(name)' (choose moco-v1 or moco-v2)")
        }
        return c
    }

    /// Checks every value; the same pure check runs on every rank before any collective.
    public func validate(worldSize: Int) throws {
        func need(_ ok: Bool, _ msg: @autoclosure () -> String) throws { if !ok { throw ConfigError(msg()) } }
        try need(epochs > 0, "--epochs must be positive (got \(epochs))")
        try need(batchSize > 0, "--batch-size must be positive (got \(batchSize))")
        try need(batchSize % worldSize == 0, "--batch-size \(batchSize) (global) is not divisible by the \(worldSize) ranks")
        let local = batchSize / max(worldSize, 1)
        try need(bnSplits >= 1, "--bn-splits must be at least 1 (got \(bnSplits))")
        try need(local % bnSplits == 0, "the per-rank batch \(local) is not divisible by --bn-splits \(bnSplits)")
        try need(local / bnSplits >= 2, "each BatchNorm split needs at least 2 samples (per-rank batch \(local), --bn-splits \(bnSplits))")
        try need(queueSize > 0, "--queue-size must be positive (got \(queueSize))")
        try need(dim > 0, "--moco-dim must be positive (got \(dim))")
        try need(mocoM >= 0 && mocoM <= 1, "--moco-m must be in [0, 1] (got \(mocoM))")
        try need(mocoT > 0 && mocoT.isFinite, "--moco-t must be positive (got \(mocoT))")
        try need(lr > 0 && lr.isFinite, "--lr must be positive (got \(lr))")
        try need(wd >= 0, "--wd must be non-negative (got \(wd))")
        try need(sgdMomentum >= 0 && sgdMomentum < 1, "--momentum must be in [0, 1) (got \(sgdMomentum))")
        try need(warmupEpochs >= 0, "--warmup-epochs must be non-negative")
        try need(DatasetKind(rawValue: data) != nil,
                 "unknown --data '\(data)' (choose \(DatasetKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        try need(knnEvery >= 0 && knnK > 0 && knnT > 0, "--knn-every must be >= 0, --knn-k and --knn-t positive")
        try need(logEvery > 0, "--log-every must be positive")
        try need(saveEvery >= 0, "--save-every must be >= 0")
        try need(trainSubset >= 0, "--train-subset must be >= 0")
        try need(checkConsistency >= 0, "--check-consistency must be >= 0")
        try need(conv.map { ConvAlgorithm(rawValue: $0) != nil } ?? true,
                 "unknown --conv '\(conv ?? "")' (choose \(ConvAlgorithm.choices))")
        try need(augment.cropScaleMin > 0 && augment.cropScaleMin <= augment.cropScaleMax && augment.cropScaleMax <= 1,
                 "crop scale must satisfy 0 < min <= max <= 1")
    }

    public var hyper: MoCoHyper {
        var h = MoCoHyper()
        h.architecture = arch; h.head = head; h.dim = dim; h.queueSize = queueSize
        h.momentum = mocoM; h.temperature = mocoT; h.symmetric = symmetric; h.shuffleBN = shuffleBN
        h.bnSplits = bnSplits; h.syncBN = syncBN; h.sgdMomentum = sgdMomentum; h.weightDecay = wd
        return h
    }

    /// The settings that must match for a checkpoint to be resumed.
    public func resumeMismatches(_ other: TrainConfig) -> [String] {
        var m: [String] = []
        func cmp<T: Equatable>(_ name: String, _ a: T, _ b: T) { if a != b { m.append("\(name): checkpoint \(b), now \(a)") } }
        cmp("arch", arch.rawValue, other.arch.rawValue); cmp("head", head.rawValue, other.head.rawValue)
        cmp("moco-dim", dim, other.dim); cmp("queue-size", queueSize, other.queueSize)
        cmp("batch-size", batchSize, other.batchSize); cmp("data", data, other.data)
        cmp("train-subset", trainSubset, other.trainSubset); cmp("seed", seed, other.seed)
        cmp("symmetric", symmetric, other.symmetric)
        return m
    }

    public func jsonString(pretty: Bool = true) -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys] : [.sortedKeys]
        return String(decoding: (try? enc.encode(self)) ?? Data(), as: UTF8.self)
    }

    public static func from(json: String) throws -> TrainConfig {
        do { return try JSONDecoder().decode(TrainConfig.self, from: Data(json.utf8)) }
        catch { throw ConfigError("cannot read the configuration: \(error)") }
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
