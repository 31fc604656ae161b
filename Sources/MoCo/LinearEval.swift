import Foundation
import MoCoTensor
import MoCoLayers
import MoCoOptim
import MoCoData
import MoCoComm

/// Linear evaluation (the MoCo paper's protocol, sec. 4.1, on precomputed features): a linear
/// classifier trained on the frozen backbone's features (BatchNorm in eval mode, no
/// augmentation), standardised per dimension with the training set's mean and std; SGD with
/// momentum 0.9, no weight decay, cosine schedule; test top-1 reported.
public struct LinearEvalConfig: Sendable {
    public var epochs = 100
    public var batchSize = 256
    public var lr = 0.1
    public var weightDecay: Float = 0
    public var seed: UInt64 = 0
    /// Engine workers of the GEMMs.
    public var threads = 1
    public init() {}
}

public enum LinearEval {
    /// Trains on `trainFeatures` [Ntr, d] and returns test top-1 (%) on `testFeatures` [Nte, d].
    public static func run(trainFeatures: FloatBuffer, trainLabels: [Int32], testFeatures: FloatBuffer, testLabels: [Int32],
                           dim d: Int, classes: Int, config: LinearEvalConfig,
                           progress: (Int, Double) -> Void = { _, _ in }) -> (train: Double, test: Double) {
        let ntr = trainLabels.count, nte = testLabels.count
        // Standardise with the training statistics.
        var mean = [Double](repeating: 0, count: d), sq = mean
        for n in 0..<ntr { for j in 0..<d { let v = Double(trainFeatures.ptr[n * d + j]); mean[j] += v; sq[j] += v * v } }
        var scale = [Float](repeating: 1, count: d), shift = [Float](repeating: 0, count: d)
        for j in 0..<d {
            let m = mean[j] / Double(ntr), v = max(sq[j] / Double(ntr) - m * m, 0)
            scale[j] = Float(1 / max(v.squareRoot(), 1e-6)); shift[j] = Float(m)
        }
        func standardise(_ f: FloatBuffer, _ n: Int) -> FloatBuffer {
            let o = FloatBuffer(count: n * d)
            for i in 0..<n { for j in 0..<d { o.ptr[i * d + j] = (f.ptr[i * d + j] - shift[j]) * scale[j] } }
            return o
        }
        let xtr = standardise(trainFeatures, ntr), xte = standardise(testFeatures, nte)
        let params = ParameterStore()
        let fc = Linear("fc", params: params, inFeatures: d, outFeatures: classes, threads: config.threads)
        fc.needsInputGrad = false
        params.finalize()
        var rng = Xoshiro(seed: config.seed, stream: [0x4C49_4E]) // PyTorch's default Linear init
        let bound = 1 / Float(d).squareRoot()
        for i in 0..<params.count { params.values.ptr[i] = rng.uniform(-bound, bound) }
        let sgd = SGD(params, momentum: 0.9, weightDecay: config.weightDecay)
        let B = config.batchSize
        let steps = max(1, ntr / B)
        fc.plan(batch: B, backward: true)
        let xb = FloatBuffer(count: B * d), dZ = FloatBuffer(count: B * classes)
        var yb = [Int](repeating: 0, count: B)
        for epoch in 0..<config.epochs {
            let perm = rng.permutation(ntr)
            var lossSum = 0.0
            for s in 0..<steps {
                for i in 0..<B {
                    let idx = perm[s * B + i]
                    (xb.ptr + i * d).update(from: xtr.ptr + idx * d, count: d)
                    yb[i] = Int(trainLabels[idx])
                }
                fc.forward(xb.ptr)
                let (loss, _) = CrossEntropy.forwardBackward(logits: fc.y.ptr, rows: B, classes: classes,
                                                             targets: { yb[$0] }, dLogits: dZ.ptr)
                lossSum += loss
                fc.backward(dZ.ptr)
                let t = Double(epoch) + Double(s) / Double(steps)
                sgd.step(lr: Float(LRSchedule.cosine.lr(base: config.lr, epoch: t, totalEpochs: config.epochs)))
            }
            progress(epoch + 1, lossSum / Double(steps))
        }
        func accuracy(_ x: FloatBuffer, _ labels: [Int32]) -> Double {
            let n = labels.count
            if n == 0 { return 0 }
            // logits = x @ W^T + b, in one GEMM over all rows
            let logits = FloatBuffer(count: n * classes)
            let w = params.value(fc.weightOffset), b = params.value(fc.biasOffset)
            for i in 0..<n { (logits.ptr + i * classes).update(from: b, count: classes) }
            BLAS.sgemm(transB: true, m: n, n: classes, k: d, a: x.ptr, lda: d, b: w, ldb: d, beta: 1, c: logits.ptr, ldc: classes, threads: config.threads)
            var correct = 0
            for i in 0..<n {
                var best = 0
                for c in 1..<classes where logits.ptr[i * classes + c] > logits.ptr[i * classes + best] { best = c }
                if Int32(best) == labels[i] { correct += 1 }
            }
            return 100 * Double(correct) / Double(n)
        }
        return (accuracy(xtr, trainLabels), accuracy(xte, testLabels))
    }
}

extension LinearEval {
    /// The validation accuracy of each weight decay of a grid and the one chosen.
    public struct WeightDecaySelection: Sendable {
        /// (weight decay, validation top-1 %) in the grid's order.
        public var validation: [(weightDecay: Float, top1: Double)]
        /// The best by validation top-1; the smaller weight decay on a tie.
        public var chosen: Float
    }

    /// Chooses the classifier's weight decay without looking at the test set: a seeded random
    /// `validationFraction` of the training rows is held out, a classifier is trained on the rest
    /// with each weight decay of `grid` (otherwise `config`), and the one with the best held-out
    /// top-1 is returned. The caller then trains on all training rows with it.
    /// trainFeatures: [Ntr, d].
    public static func selectWeightDecay(_ grid: [Float], trainFeatures: FloatBuffer, trainLabels: [Int32], dim d: Int,
                                         classes: Int, config: LinearEvalConfig, validationFraction: Double,
                                         progress: (Float, Double) -> Void = { _, _ in }) -> WeightDecaySelection {
        precondition(!grid.isEmpty && validationFraction > 0 && validationFraction < 1)
        let n = trainLabels.count
        let nval = min(n - 1, max(1, Int((Double(n) * validationFraction).rounded())))
        var rng = Xoshiro(seed: config.seed, stream: [0x56_414C]) // "VAL"
        let perm = rng.permutation(n)
        // rows: [rows.count, d] copied out of trainFeatures in `rows` order.
        func take(_ rows: ArraySlice<Int>) -> (FloatBuffer, [Int32]) {
            let f = FloatBuffer(count: rows.count * d)
            for (i, r) in rows.enumerated() { (f.ptr + i * d).update(from: trainFeatures.ptr + r * d, count: d) }
            return (f, rows.map { trainLabels[$0] })
        }
        let (fitF, fitL) = take(perm[nval...]), (valF, valL) = take(perm[..<nval])
        var results: [(weightDecay: Float, top1: Double)] = []
        for wd in grid {
            var c = config
            c.weightDecay = wd
            let r = run(trainFeatures: fitF, trainLabels: fitL, testFeatures: valF, testLabels: valL, dim: d, classes: classes, config: c)
            results.append((wd, r.test))
            progress(wd, r.test)
        }
        let best = results.max { a, b in a.top1 < b.top1 || (a.top1 == b.top1 && a.weightDecay > b.weightDecay) }!
        return WeightDecaySelection(validation: results, chosen: best.weightDecay)
    }
}
