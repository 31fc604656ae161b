import MoCoTensor

/// BatchNorm1d over feature rows `[N, D]` (each of the D features normalised over the N rows),
/// with PyTorch's conventions as in `BatchNorm2d` (biased variance to normalise, unbiased in the
/// running estimate, momentum 0.1, eps 1e-5). Used in projection heads (MoCo v3's projector and
/// predictor; Chen, Xie, He 2021).
///
/// `affine: false` (PyTorch's `BatchNorm1d(d, affine=False)`, the last layer of MoCo v3's
/// projector): y = x̂, no weight or bias. Split BN (`splits` = S) as `BatchNorm2d`: S contiguous
/// chunks of N/S rows, each normalised with its own statistics (what S workers holding them
/// compute); the running statistics take the mean over chunks of each chunk's update.
///
/// Backward per chunk of M rows: dGamma = Σ dY·x̂, dBeta = Σ dY,
///   dX = gamma / (M·σ) · (M·dY − Σ dY − x̂ · Σ dY·x̂)   (gamma = 1 without affine)
public final class BatchNorm1d {
    public let name: String
    public let features: Int
    public let affine: Bool
    public let eps: Float = 1e-5
    public let momentum: Float = 0.1
    /// Offsets of weight and bias in the parameters (-1 without affine).
    public let weightOffset: Int, biasOffset: Int
    public let meanOffset: Int, varOffset: Int
    public var numBatchesTracked: Int64 = 0
    /// Number of contiguous row chunks normalised separately.
    public var splits = 1
    let params: ParameterStore
    let buffers: ParameterStore
    public private(set) var batch = 0
    public private(set) var y = FloatBuffer(count: 0)
    public private(set) var dX = FloatBuffer(count: 0)
    /// mean, 1/σ of each (split, feature): [S, D]
    private var mean: [Float] = [], invStd: [Float] = []
    private var input: UnsafePointer<Float>?

    public init(_ name: String, params: ParameterStore, buffers: ParameterStore, features: Int, affine: Bool = true) {
        self.name = name; self.features = features; self.affine = affine
        self.params = params; self.buffers = buffers
        weightOffset = affine ? params.register("\(name).weight", shape: [features]) : -1
        biasOffset = affine ? params.register("\(name).bias", shape: [features]) : -1
        meanOffset = buffers.register("\(name).running_mean", shape: [features])
        varOffset = buffers.register("\(name).running_var", shape: [features])
    }

    public func resetParameters() {
        if affine {
            params.value(weightOffset).update(repeating: 1, count: features)
            params.value(biasOffset).update(repeating: 0, count: features)
        }
        buffers.value(meanOffset).update(repeating: 0, count: features)
        buffers.value(varOffset).update(repeating: 1, count: features)
        numBatchesTracked = 0
    }

    public func plan(batch n: Int, backward: Bool) {
        if y.count != n * features { y = FloatBuffer(count: n * features) }
        if backward && dX.count != n * features { dX = FloatBuffer(count: n * features) }
        batch = n
    }

    @inline(__always) private func gammaBeta(_ d: Int) -> (Float, Float) {
        affine ? (params.value(weightOffset)[d], params.value(biasOffset)[d]) : (1, 0)
    }

    /// x: [N, D] -> y: [N, D]
    public func forward(_ x: UnsafePointer<Float>, training: Bool) {
        input = x
        let D = features, N = batch
        let rm = buffers.value(meanOffset), rv = buffers.value(varOffset)
        guard training else {
            for d in 0..<D {
                let (g, b) = gammaBeta(d)
                let inv = 1 / (rv[d] + eps).squareRoot()
                for n in 0..<N { y.ptr[n * D + d] = g * (x[n * D + d] - rm[d]) * inv + b }
            }
            return
        }
        let S = splits
        precondition(N % S == 0 && N / S >= 1, "\(name): batch \(N) not divisible by \(S) BN splits")
        let M = N / S
        if mean.count != S * D { mean = .init(repeating: 0, count: S * D); invStd = mean }
        var meanUpdate = [Double](repeating: 0, count: D), varUpdate = [Double](repeating: 0, count: D)
        for s in 0..<S {
            for d in 0..<D {
                var sum = 0.0
                for n in (s * M)..<((s + 1) * M) { sum += Double(x[n * D + d]) }
                let md = sum / Double(M)
                var sq = 0.0
                for n in (s * M)..<((s + 1) * M) { let c = Double(x[n * D + d]) - md; sq += c * c }
                let vd = sq / Double(M)
                let inv = Float(1 / (vd + Double(eps)).squareRoot())
                mean[s * D + d] = Float(md); invStd[s * D + d] = inv
                let (g, b) = gammaBeta(d)
                let m = Float(md)
                for n in (s * M)..<((s + 1) * M) { y.ptr[n * D + d] = g * (x[n * D + d] - m) * inv + b }
                meanUpdate[d] += md / Double(S)
                varUpdate[d] += (M > 1 ? vd * Double(M) / Double(M - 1) : vd) / Double(S)
            }
        }
        for d in 0..<D {
            rm[d] = (1 - momentum) * rm[d] + momentum * Float(meanUpdate[d])
            rv[d] = (1 - momentum) * rv[d] + momentum * Float(varUpdate[d])
        }
        numBatchesTracked += 1
    }

    /// dY: [N, D] -> dGamma, dBeta (with affine), dX: [N, D] (training-mode statistics)
    public func backward(_ dY: UnsafePointer<Float>) {
        guard let x = input else { preconditionFailure("\(name): backward before forward") }
        let D = features, N = batch, S = splits, M = N / S
        if affine {
            params.grad(weightOffset).update(repeating: 0, count: D)
            params.grad(biasOffset).update(repeating: 0, count: D)
        }
        for s in 0..<S {
            for d in 0..<D {
                let m = mean[s * D + d], inv = invStd[s * D + d]
                var sdy = 0.0, sdyx = 0.0
                for n in (s * M)..<((s + 1) * M) {
                    let g = Double(dY[n * D + d])
                    sdy += g; sdyx += g * Double((x[n * D + d] - m) * inv)
                }
                if affine { params.grad(weightOffset)[d] += Float(sdyx); params.grad(biasOffset)[d] += Float(sdy) }
                let k = gammaBeta(d).0 * inv / Float(M)
                for n in (s * M)..<((s + 1) * M) {
                    let xh = (x[n * D + d] - m) * inv
                    dX.ptr[n * D + d] = k * (Float(M) * dY[n * D + d] - Float(sdy) - xh * Float(sdyx))
                }
            }
        }
    }
}
