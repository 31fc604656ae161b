import ArgumentParser
import Foundation
import MoCo
import MoCoData
import MoCoLayers
import MoCoTensor
import SafeTensors

/// `moco temperature`: the softmax scores of the positive and of the negatives of one trained
/// model at several temperatures (issue 12, item 3; `SoftmaxScores`). Plot with
/// `python3 scripts/temperature_plot.py PREFIX`.
struct Temperature: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Histogram the softmax scores of the positive and the negatives of a trained MoCo or memory-bank checkpoint at several temperatures.",
        discussion: """
            Queries are view 0 (the query crop) of a fixed random sample of training images, encoded by encoder_q; the positive is \
            encoder_k's key of view 1 (moco) or the image's bank row (memory-bank); the negatives are the checkpoint's queue \
            (all K columns) or K bank rows drawn uniformly per query. Encoders in eval mode (BatchNorm running statistics). \
            Writes PREFIX_hist.csv (t,kind,bin_lo,bin_hi,count; log10 bins) and PREFIX_summary.csv.
            """)

    @Option(help: "A moco or memory-bank training checkpoint (checkpoint_*.safetensors).") var weights: String
    @Option(help: "Temperatures, comma-separated.") var t = "0.05,0.5"
    @Option(help: "Queries (training images).") var images = 256
    @Option(help: "Output prefix: PREFIX_hist.csv and PREFIX_summary.csv.") var out: String
    @Option(help: "Directory of the dataset files (default: the checkpoint's).") var dataDir: String?
    @Option(help: "Sampling seed.") var seed: UInt64 = 0
    @Option(help: "Engine threads.") var threads: Int?

    func run() throws {
        Runtime.run { comm in
            let temps = t.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard !temps.isEmpty, temps.allSatisfy({ $0 != nil && $0! > 0 && $0!.isFinite }) else {
                throw ValidationError("--t must be positive numbers separated by commas, got '\(t)'")
            }
            guard images >= 1 else { throw ValidationError("--images must be positive") }
            let engine = try Runtime.engine(threads: threads, conv: nil)
            let f = try SafeTensorsFile(path: weights)
            let info = try Checkpoint.info(f)
            var c = info.config
            if let dataDir { c.dataDir = dataDir }
            let mech = c.moco.mechanism
            guard mech == .moco || mech == .memoryBank else {
                throw ValidationError("\(weights) was trained with --mechanism \(mech.rawValue); moco temperature needs a moco or memory-bank checkpoint (stored negatives)")
            }
            let train = try Trainer.loadData(c, comm: comm).train
            let q = try WeightsFile.load(weights, architecture: nil, head: nil, engine: engine).encoder
            let n = min(images, train.count), D = q.dim
            var rng = Xoshiro(seed: seed, stream: [0x5445_4D50])   // "TEMP"
            let idx = Array(rng.permutation(train.count).prefix(n))
            let qs = project(q, train, idx, view: 0, epoch: info.epoch, config: c)
            var positive = [Float](repeating: 0, count: n)
            var negatives: [Float]
            let K: Int
            if mech == .moco {
                let k = Encoder(architecture: q.architecture, head: q.head, inChannels: q.inChannels, dim: D, trainable: false,
                                engine: engine, hidden: c.moco.mlpDim)
                try EncoderState.load(k, from: f, prefix: "encoder_k.")
                let ks = project(k, train, idx, view: 1, epoch: info.epoch, config: c)
                try f.expect("queue", dtype: .f32, shape: [D, c.moco.queueSize])
                let queue = try f.floats("queue")
                K = c.moco.queueSize
                negatives = .init(repeating: 0, count: n * K)
                for i in 0..<n {
                    positive[i] = dot(qs, i * D, ks, i * D, D)
                    for j in 0..<K {
                        var s: Float = 0
                        for d in 0..<D { s += qs[i * D + d] * queue[d * K + j] }
                        negatives[i * K + j] = s
                    }
                }
            } else {
                try f.expect("memory_bank", dtype: .f32, shape: [train.count, D])
                let bank = try f.floats("memory_bank")
                K = c.moco.queueSize
                negatives = .init(repeating: 0, count: n * K)
                for i in 0..<n {
                    positive[i] = dot(qs, i * D, bank, idx[i] * D, D)
                    for j in 0..<K { negatives[i * K + j] = dot(qs, i * D, bank, rng.below(train.count) * D, D) }
                }
            }
            let summaries = SoftmaxScores.summarize(positive: positive, negatives: negatives, k: K, temperatures: temps.map { $0! })
            try write(SoftmaxScores.histogramCSV(summaries), to: out + "_hist.csv")
            try write(SoftmaxScores.summaryCSV(summaries, k: K), to: out + "_summary.csv")
            emit("\(weights): \(mech.rawValue), trained at T = \(c.moco.temperature), \(n) queries x \(K) negatives")
            for s in summaries {
                emit(String(format: "T = %g: mean p(positive) %.4f, mean top negative %.2e, effective negatives %.1f of %d, top 1%% of negatives hold %.1f%% of their mass",
                            s.t, s.meanPositive, s.meanTopNegative, s.effectiveNegatives, K, 100 * s.topPercentShare))
            }
            emit("wrote \(out)_hist.csv and \(out)_summary.csv; plot: python3 scripts/temperature_plot.py \(out)")
        }
    }

    /// normalize(e(crop)) of view `view` of each image, eval mode -> [n, dim]
    func project(_ e: Encoder, _ ds: Dataset, _ idx: [Int], view: Int, epoch: Int, config c: TrainConfig) -> [Float] {
        let size = ds.imageSize, D = e.dim, nb = min(256, idx.count)
        e.plan(batch: nb, height: ds.height, width: ds.width, backward: false)
        let crops = FloatBuffer(count: nb * size)
        var out = [Float](repeating: 0, count: idx.count * D)
        var start = 0
        while start < idx.count {
            let m = min(nb, idx.count - start)
            for j in 0..<m {
                var rng = TwoCropLoader.viewGenerator(seed: c.seed, epoch: epoch, index: idx[start + j], view: view)
                augment(ds, index: idx[start + j], config: c.augment, rng: &rng, out: crops.ptr + j * size)
            }
            e.forward(crops.ptr, training: false)
            out.withUnsafeMutableBufferPointer { (UnsafeMutablePointer($0.baseAddress!) + start * D).update(from: e.projection, count: m * D) }
            start += m
        }
        out.withUnsafeMutableBufferPointer { l2NormalizeRows($0.baseAddress!, rows: idx.count, dim: D) }
        return out
    }

    func dot(_ a: [Float], _ i: Int, _ b: [Float], _ j: Int, _ n: Int) -> Float {
        var s: Float = 0
        for d in 0..<n { s += a[i + d] * b[j + d] }
        return s
    }

    func write(_ s: String, to path: String) throws {
        do { try AtomicFile.write(Array(s.utf8), to: path) } catch { throw ValidationError("cannot write \(path): \(error)") }
    }
}
