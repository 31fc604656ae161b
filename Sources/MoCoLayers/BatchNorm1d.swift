import MoCoTensor

/// BatchNorm1d over feature rows `[N, D]` (each of the D features normalised over the N rows),
/// with PyTorch's conventions as in `BatchNorm2d` (biased variance to normalise, unbiased in the
/// running estimate, momentum 0.1, eps 1e-5). Used in projection heads (e.g. MoCo v3's).
public final class BatchNorm1d {
    public let name: String
    public let features: Int
    public let eps: Float = 1e-5
    public let momentum: Float = 0.1
    public let weightOffset: Int, biasOffset: Int, meanOffset: Int, varOffset: Int
    public var numBatchesTracked: Int64 = 0
    let params: ParameterStore
    let buffers: ParameterStore
    public private(set) var batch = 0
    public private(set) var y = FloatBuffer(count: 0)
    public private(set) var dX = FloatBuffer(count: 0)
    private var mean: [Float] = [], invStd: [Float] = []
    private var input: UnsafePointer<Float>?

    public init(_ name: String, params: ParameterStore, buffers: ParameterStore, features: Int) {
        self.name = name; self.features = features
        self.params = params; self.buffers = buffers
        weightOffset = params.register("\(name).weight", shape: [features])
        biasOffset = params.register("\(name).bias", shape: [features])
        meanOffset = buffers.register("\(name).running_mean", shape: [features])
        varOffset = buffers.register("\(name).running_var", shape: [features])
    }

    public func resetParameters() {
        params.value(weightOffset).update(repeating: 1, count: features)
        params.value(biasOffset).update(repeating: 0, count: features)
        buffers.value(meanOffset).update(repeating: 0, count: features)
        buffers.value(varOffset).update(repeating: 1, count: features)
        numBatchesTracked = 0
    }

    public func plan(batch n: Int, backward: Bool) {
        if y.count != n * features { y = FloatBuffer(count: n * features) }
        if backward && dX.count != n * features { dX = FloatBuffer(count: n * features) }
        if mean.count != features { mean = .init(repeating: 0, count: features); invStd = mean }
        batch = n
    }

    /// x: [N, D] -> y: [N, D]
    public func forward(_ x: UnsafePointer<Float>, training: Bool) {
        input = x
        let D = features, N = batch
        let gamma = params.value(weightOffset), beta = params.value(biasOffset)
        let rm = buffers.value(meanOffset), rv = buffers.value(varOffset)
        for d in 0..<D {
            var m: Float, inv: Float
            if training {
                var s = 0.0, q = 0.0
                for n in 0..<N { let v = Double(x[n * D + d]); s += v; q += v * v }
                let md = s / Double(N), vd = max(0, q / Double(N) - md * md)
                m = Float(md); inv = Float(1 / (vd + Double(eps)).squareRoot())
                rm[d] = (1 - momentum) * rm[d] + momentum * m
                rv[d] = (1 - momentum) * rv[d] + momentum * Float(N > 1 ? vd * Double(N) / Double(N - 1) : vd)
            } else {
                m = rm[d]; inv = 1 / (rv[d] + eps).squareRoot()
            }
            mean[d] = m; invStd[d] = inv
            for n in 0..<N { y.ptr[n * D + d] = gamma[d] * (x[n * D + d] - m) * inv + beta[d] }
        }
        if training { numBatchesTracked += 1 }
    }

    /// dY: [N, D] -> dGamma, dBeta, dX: [N, D] (training-mode statistics)
    public func backward(_ dY: UnsafePointer<Float>) {
        guard let x = input else { preconditionFailure("\(name): backward before forward") }
        let D = features, N = batch
        let gamma = params.value(weightOffset)
        let dGamma = params.grad(weightOffset), dBeta = params.grad(biasOffset)
        for d in 0..<D {
            let m = mean[d], inv = invStd[d]
            var sdy = 0.0, sdyx = 0.0
            for n in 0..<N {
                let g = Double(dY[n * D + d])
                sdy += g; sdyx += g * Double((x[n * D + d] - m) * inv)
            }
            dGamma[d] = Float(sdyx); dBeta[d] = Float(sdy)
            let k = gamma[d] * inv / Float(N)
            for n in 0..<N {
                let xh = (x[n * D + d] - m) * inv
                dX.ptr[n * D + d] = k * (Float(N) * dY[n * D + d] - Float(sdy) - xh * Float(sdyx))
            }
        }
    }
}
