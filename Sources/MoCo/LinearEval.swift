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
