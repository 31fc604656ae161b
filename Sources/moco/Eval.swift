import ArgumentParser
import Foundation
import MoCo
import MoCoComm
import MoCoData
import MoCoLayers
import MoCoTensor

/// Options shared by the evaluation commands.
struct EvalOptions: ParsableArguments {
    @Option(help: "Weights: a MoCo checkpoint or a bare encoder.") var weights: String?
    @Option(help: "Encoder (for a bare encoder or --random-init).") var arch: Architecture?
    @Option(help: "Dataset (default: the checkpoint's, else fashion-mnist).") var data: DatasetKind?
    @Option(help: "Directory of the dataset files.") var dataDir: String?
    @Option(help: "--data folder: side of the square images (default: the checkpoint's, else 32).") var imageSize: Int?
    @Option(help: "--data folder: 1 or 3 channels (default: the checkpoint's, else from the data).") var channels: Int?
    @Option(help: "--data folder: directory for the decoded cache (default: the checkpoint's, else the data folder).") var cacheDir: String?
    @Flag(help: "Baseline: raw normalised pixels as features.") var rawPixels = false
    @Flag(help: "Baseline: a randomly initialised encoder.") var randomInit = false
    @Option(help: "Seed of --random-init.") var seed: UInt64 = 0
    @Option(help: "Initial convolution weights of --random-init (as moco train --init).") var `init`: InitScheme = .default
    @Option(help: "Features: backbone (pooled, default), gridG (the last map pooled to a GxG grid, e.g. grid4), stageS or stageS-gridG (the output of stage S pooled, e.g. stage2-grid4), hidden (the mlp head's hidden layer) or projection (the head's output); or several joined by + (each part L2-normalised, weighted by an optional @W, concatenated: stage2-grid7+backbone@0.5); hidden and projection need the head's weights.") var features: FeatureSpec = .backbone
    @Option(help: "Engine threads per rank (default: cores / ranks on the node).") var threads: Int?

    /// The engine settings of an evaluation (threads; the configured or build-default convolution).
    func engine() throws -> EngineConfig { try Runtime.engine(threads: threads, conv: nil) }

    /// The datasets and a feature function (L2-normalised or not), agreed on by every rank
    /// (loading an image folder is itself collective: `Trainer.loadSplits`).
    func setup(comm: Communicator, engine: EngineConfig) throws -> (train: Dataset, test: Dataset, dim: Int, label: String,
                                                                    features: (Dataset, [Int], Bool) -> FloatBuffer) {
        let (cfg, loaded) = try comm.agreeing { () -> (TrainConfig?, Encoder?) in
            let modes = [weights != nil, rawPixels, randomInit].filter { $0 }.count
            guard modes == 1 else { throw ValidationError("give exactly one of --weights, --raw-pixels, --random-init") }
            guard let weights else { return (nil, nil) }
            let l = try WeightsFile.load(weights, architecture: arch, head: nil, backboneOnly: !features.needsHead, engine: engine)
            return (l.config, l.encoder)
        }
        let k = data ?? cfg?.data ?? .fashionMNIST
        // An image folder at the size and channels it was trained at, unless given; its
        // evaluation set is D/val.
        let same = cfg?.data == .folder
        let folder = ImageFolderOptions(imageSize: imageSize ?? (same ? cfg?.imageSize : nil) ?? ImageFolderOptions.defaultImageSize,
                                        channels: channels ?? (same ? cfg?.channels : nil), cacheDir: cacheDir ?? (same ? cfg?.cacheDir : nil))
        try comm.agreeing {
            if k != .folder && (imageSize != nil || channels != nil || cacheDir != nil) {
                throw ValidationError("--image-size, --channels and --cache-dir apply to --data folder only")
            }
        }
        let (train, test) = try Trainer.loadSplits(kind: k, directory: dataDir ?? cfg?.dataDir, folder: folder, comm: comm,
                                                   threads: engine.threads, log: { say(comm, $0) })
        return try comm.agreeing {
            var encoder = loaded
            if randomInit {
                let e = Encoder(architecture: arch ?? .resnet20, head: .mlp, inChannels: train.channels, trainable: false, engine: engine)
                e.initialize(seed: seed, scheme: `init`)
                encoder = e
            }
            if rawPixels {
                guard features == .backbone else { throw ValidationError("--features applies to an encoder, not --raw-pixels") }
                // Raw-pixel features are always L2-normalised (the kNN baseline's definition).
                return (train, test, train.imageSize, "raw pixels", { ds, idx, _ in pixelFeatures(ds, indices: idx) })
            }
            let e = encoder!
            guard e.inChannels == train.channels else {
                throw ValidationError("the encoder takes \(e.inChannels) channel(s), \(k.rawValue) images have \(train.channels)")
            }
            let fx = try FeatureExtractor(architecture: e.architecture, head: e.head, inChannels: e.inChannels, dim: e.dim,
                                          height: train.height, width: train.width, engine: engine, hidden: e.projector?.hidden,
                                          features: features)
            fx.encoder.copyState(from: e)
            let layer = features == .backbone ? "" : " \(features)"
            let label = randomInit ? "random \(e.architecture.rawValue)\(layer) (\(`init`.rawValue) init, seed \(seed))"
                                   : "\(e.architecture.rawValue)\(layer) from \(weights!)"
            return (train, test, fx.featureDim, label, { ds, idx, norm in fx.features(ds, indices: idx, normalize: norm) })
        }
    }
}

struct Knn: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Weighted kNN top-1 on the test set with the training set as the bank (InstDisc voting).")
    @OptionGroup var options: EvalOptions
    @Option(help: "Neighbours.") var k = 200
    @Option(help: "Temperature of the vote weights exp(s/t).") var t: Float = 0.1
    @Option(help: "The first N training images as the bank (default all; as moco train --knn-bank).") var knnBank: Int?
    @Option(help: "The first N test images (default all; as moco train --knn-test).") var knnTest: Int?
    @Option(help: "Evaluate on the last N training images instead of the test set, with the training images before them as the bank: choose a feature layer or k without looking at the test set.") var heldOut: Int?
    @Flag(help: "Print one JSON line.") var json = false

    func run() throws {
        Runtime.run { comm in
            let engine = try comm.agreeing {
                for (flag, v) in [("--knn-bank", knnBank), ("--knn-test", knnTest), ("--held-out", heldOut)] {
                    if let v, v <= 0 { throw ValidationError("\(flag) must be positive, got \(v)") }
                }
                if heldOut != nil && knnTest != nil { throw ValidationError("--knn-test limits the test set; --held-out evaluates on training images instead: give one") }
                return try options.engine()
            }
            let s = try options.setup(comm: comm, engine: engine)
            // Held out: the last N training images are the queries, the ones before them the bank.
            let (pool, queries): (Dataset, Dataset) = try comm.agreeing {
                guard let n = heldOut else { return (s.train, s.test) }
                guard n < s.train.count else {
                    throw ValidationError("--held-out \(n) leaves no bank: the training set has \(s.train.count) images")
                }
                return (s.train.prefix(s.train.count - n), s.train.suffix(n))
            }
            let bank = knnBank.map { pool.prefix(min($0, pool.count)) } ?? pool
            let test = knnTest.map { queries.prefix(min($0, queries.count)) } ?? queries
            let watch = Stopwatch()
            let top1 = try DistributedKNN.top1(train: bank, test: test, dim: s.dim, k: k, t: t, comm: comm,
                                               threads: engine.threads) { ds, idx in
                s.features(ds, idx, true)
            }
            let secs = watch.elapsed
            if json {
                say(comm, "{\"features\": \"\(s.label)\", \"data\": \"\(bank.name)\", \"test\": \(test.count), \"queries\": \"\(test.name)\", \"k\": \(k), \"t\": \(t), \"knn_top1\": \(top1), \"seconds\": \(secs)}")
            } else {
                let queries = heldOut == nil ? "\(test.count) test images" : "\(test.count) held-out images \(test.name)"
                say(comm, String(format: "kNN top-1 %.2f%% (%@ on %@, %@, k=%d, t=%.2f, %.1f s)", top1, s.label, bank.name,
                                 queries, k, t, secs))
            }
        }
    }
}

struct Lincls: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Linear classification on the frozen backbone (BN in eval mode; standardised features; SGD momentum 0.9, cosine).")
    @OptionGroup var options: EvalOptions
    @Option(help: "Epochs over the precomputed features.") var epochs = 100
    @Option(help: "Learning rate.") var lr = 0.1
    @Option(help: "Batch size.") var batchSize = 256
    @Option(help: "Weight decay.") var wd: Float = 0
    @Option(name: .customLong("wd-grid"), parsing: .upToNextOption,
            help: "Choose the weight decay among these values on a held-out part of the training set (--val-fraction), then train on all of it; replaces --wd.")
    var wdGrid: [Float] = []
    @Option(help: "Fraction of the training images held out to choose --wd-grid's value.") var valFraction = 0.1

    func validate() throws {
        guard valFraction > 0 && valFraction < 1 else { throw ValidationError("--val-fraction must be between 0 and 1 (exclusive), got \(valFraction)") }
        if let bad = wdGrid.first(where: { !($0 >= 0 && $0.isFinite) }) { throw ValidationError("--wd-grid: \(bad) is not a weight decay (>= 0)") }
        guard wd >= 0 && wd.isFinite else { throw ValidationError("--wd must be >= 0, got \(wd)") }
    }

    func run() throws {
        Runtime.run { comm in
            let engine = try comm.agreeing { try options.engine() }
            let s = try options.setup(comm: comm, engine: engine)
            say(comm, "extracting features (\(s.label))...")
            let trainF = try gatherFeatures(s.train, dim: s.dim, comm: comm) { s.features($0, $1, false) }
            let testF = try gatherFeatures(s.test, dim: s.dim, comm: comm) { s.features($0, $1, false) }
            var c = LinearEvalConfig()
            c.epochs = epochs; c.lr = lr; c.batchSize = batchSize; c.weightDecay = wd; c.threads = engine.threads
            let classes = max(s.train.numClasses, s.test.numClasses)
            if !wdGrid.isEmpty {
                say(comm, "choosing the weight decay on \(Int((Double(s.train.count) * valFraction).rounded())) held-out training images...")
                let sel = LinearEval.selectWeightDecay(wdGrid, trainFeatures: trainF, trainLabels: s.train.labels, dim: s.dim,
                                                       classes: classes, config: c, validationFraction: valFraction) { wd, top1 in
                    say(comm, String(format: "  wd %g: held-out top-1 %.2f%%", wd, top1))
                }
                c.weightDecay = sel.chosen
                say(comm, String(format: "weight decay %g chosen; training on all %d training images", sel.chosen, s.train.count))
            }
            let r = LinearEval.run(trainFeatures: trainF, trainLabels: s.train.labels, testFeatures: testF, testLabels: s.test.labels,
                                   dim: s.dim, classes: classes, config: c) { epoch, loss in
                if epoch % 10 == 0 || epoch == epochs { say(comm, String(format: "epoch %d/%d loss %.4f", epoch, epochs, loss)) }
            }
            say(comm, String(format: "linear top-1 %.2f%% test (%.2f%% train, wd %g) (%@ on %@)", r.test, r.train, c.weightDecay, s.label, s.train.name))
        }
    }

    /// Features of the whole dataset, computed in shares by the ranks and all-gathered.
    func gatherFeatures(_ ds: Dataset, dim: Int, comm: Communicator, _ f: (Dataset, [Int]) -> FloatBuffer) throws -> FloatBuffer {
        let W = comm.size
        func share(_ r: Int) -> Range<Int> { (ds.count * r / W)..<(ds.count * (r + 1) / W) }
        let mine = share(comm.rank)
        let local = f(ds, Array(mine))
        let all = FloatBuffer(count: ds.count * dim)
        try comm.allgatherv(local.ptr, count: mine.count * dim, into: all.ptr, counts: (0..<W).map { share($0).count * dim })
        return all
    }
}
