import Foundation
import MoCoTensor

/// BatchNorm2d (Ioffe and Szegedy 2015) with PyTorch's conventions, on channel-major
/// activations `[C, N, H, W]`, optionally fused with the ReLU that follows it.
///
/// Training:  y = gamma * (x - mean_B) / sqrt(var_B + eps) + beta, with the biased batch
/// variance; running_mean <- (1 - momentum) * running_mean + momentum * mean_B and
/// running_var <- (1 - momentum) * running_var + momentum * var_B * M / (M - 1).
/// Evaluation uses the running statistics.
///
/// Split BN (`splits` = S): the batch is cut into S contiguous chunks of N/S samples, each
/// normalised with its own statistics (what S workers holding those chunks compute); the running
/// statistics take the mean over chunks of each chunk's update. With a `reducer`, the statistics
/// of each chunk are also summed across workers (synchronised BN).
///
/// Backward per chunk of M values (x̂ the normalised input):
///   dGamma = Σ dY·x̂,  dBeta = Σ dY,  dX = gamma / (M·σ) · (M·dY − Σ dY − x̂ · Σ dY·x̂)
public final class BatchNorm2d {
    public let name: String
    public let channels: Int
    public let eps: Float = 1e-5
    public let momentum: Float = 0.1
    public let fusedReLU: Bool
    public let weightOffset: Int, biasOffset: Int
    public let meanOffset: Int, varOffset: Int
    public var numBatchesTracked: Int64 = 0
    let params: ParameterStore
    let buffers: ParameterStore

    /// Number of contiguous sample chunks normalised separately (1 = plain BN).
    public var splits = 1
    public weak var reducer: BatchStatReducer?

    public private(set) var batch = 0, spatial = 0
    public private(set) var y = FloatBuffer(count: 0)
    public private(set) var dX = FloatBuffer(count: 0)
    private var mean: [Double] = [], invStd: [Double] = []
    private var stat: [Double] = []
    private var input: UnsafePointer<Float>?
    private var trainedForward = false

    public init(_ name: String, params: ParameterStore, buffers: ParameterStore, channels: Int, fusedReLU: Bool = false) {
        self.name = name; self.channels = channels; self.fusedReLU = fusedReLU
        self.params = params; self.buffers = buffers
        weightOffset = params.register("\(name).weight", shape: [channels])
        biasOffset = params.register("\(name).bias", shape: [channels])
        meanOffset = buffers.register("\(name).running_mean", shape: [channels])
        varOffset = buffers.register("\(name).running_var", shape: [channels])
    }

    /// PyTorch's initial state: weight 1, bias 0, running mean 0, running var 1.
    public func resetParameters() {
        params.value(weightOffset).update(repeating: 1, count: channels)
        params.value(biasOffset).update(repeating: 0, count: channels)
        buffers.value(meanOffset).update(repeating: 0, count: channels)
        buffers.value(varOffset).update(repeating: 1, count: channels)
        numBatchesTracked = 0
    }

    public func plan(batch n: Int, spatial hw: Int, backward: Bool) {
        if y.count != channels * n * hw { y = FloatBuffer(count: channels * n * hw) }
        if backward && dX.count != channels * n * hw { dX = FloatBuffer(count: channels * n * hw) }
        if !backward { dX = FloatBuffer(count: 0) }
        batch = n; spatial = hw
    }

    /// x: [C, N, H, W] -> y: [C, N, H, W]
    public func forward(_ x: UnsafePointer<Float>, training: Bool) {
        input = x
        trainedForward = training
        let L = batch * spatial
        let gamma = params.value(weightOffset), beta = params.value(biasOffset)
        let rm = buffers.value(meanOffset), rv = buffers.value(varOffset)
        if !training {
            for c in 0..<channels {
                let s = gamma[c] / (rv[c] + eps).squareRoot()
                let b = beta[c] - rm[c] * s
                affine(x + c * L, y.ptr + c * L, L, s, b)
            }
            return
        }
        let S = splits
        precondition(batch % S == 0, "\(name): batch \(batch) not divisible by \(S) BN splits")
        let M = L / S
        if mean.count != channels * S { mean = .init(repeating: 0, count: channels * S); invStd = mean }
        if stat.count != 2 * channels * S { stat = .init(repeating: 0, count: 2 * channels * S) }
        stat.withUnsafeMutableBufferPointer { st in
            for c in 0..<channels {
                for s in 0..<S {
                    let (sum, sq) = sums(x + c * L + s * M, M)
                    st[2 * (c * S + s)] = sum
                    st[2 * (c * S + s) + 1] = sq
                }
            }
            let workers = reducer?.workers ?? 1
            reducer?.sumAcrossWorkers(st.baseAddress!, count: st.count)
            let count = Double(M * workers)
            for c in 0..<channels {
                var meanSum = 0.0, varSum = 0.0
                for s in 0..<S {
                    let m = st[2 * (c * S + s)] / count
                    let v = max(0, st[2 * (c * S + s) + 1] / count - m * m)
                    mean[c * S + s] = m
                    invStd[c * S + s] = 1 / (v + Double(eps)).squareRoot()
                    meanSum += m
                    varSum += count > 1 ? v * count / (count - 1) : v
                    let sc = Double(gamma[c]) * invStd[c * S + s]
                    affine(x + c * L + s * M, y.ptr + c * L + s * M, M, Float(sc), Float(Double(beta[c]) - m * sc))
                }
                let mom = momentum
                rm[c] = (1 - mom) * rm[c] + mom * Float(meanSum / Double(S))
                rv[c] = (1 - mom) * rv[c] + mom * Float(varSum / Double(S))
            }
        }
        numBatchesTracked += 1
    }

    /// dY: [C, N, H, W] (masked in place by the fused ReLU) -> dGamma, dBeta, dX: [C, N, H, W]
    public func backward(_ dY: UnsafeMutablePointer<Float>) {
        guard let x = input else { preconditionFailure("\(name): backward before forward") }
        precondition(trainedForward, "\(name): backward needs a training-mode forward")
        let L = batch * spatial, S = splits, M = L / S
        let gamma = params.value(weightOffset)
        let dGamma = params.grad(weightOffset), dBeta = params.grad(biasOffset)
        if fusedReLU { reluMask(dY, y.ptr, channels * L) }
        stat.withUnsafeMutableBufferPointer { st in
            for c in 0..<channels {
                for s in 0..<S {
                    let (sdy, sdyx) = gradSums(x + c * L + s * M, dY + c * L + s * M, M,
                                               mean[c * S + s], invStd[c * S + s])
                    st[2 * (c * S + s)] = sdy
                    st[2 * (c * S + s) + 1] = sdyx
                }
            }
            // Parameter gradients use this worker's sums: averaging gradients across workers
            // then gives the gradient of the global loss.
            for c in 0..<channels {
                var gSum = 0.0, bSum = 0.0
                for s in 0..<S { bSum += st[2 * (c * S + s)]; gSum += st[2 * (c * S + s) + 1] }
                dGamma[c] = Float(gSum)
                dBeta[c] = Float(bSum)
            }
            let workers = reducer?.workers ?? 1
            reducer?.sumAcrossWorkers(st.baseAddress!, count: st.count)
            let count = Double(M * workers)
            for c in 0..<channels {
                for s in 0..<S {
                    let sdy = st[2 * (c * S + s)], sdyx = st[2 * (c * S + s) + 1]
                    let m = mean[c * S + s], inv = invStd[c * S + s]
                    let k = Double(gamma[c]) * inv
                    // dX = k*dY - k/count*sdy - k/count*sdyx * (x - m)*inv
                    let a = Float(k), b = Float(-k * sdy / count + k * sdyx / count * m * inv)
                    let cx = Float(-k * sdyx / count * inv)
                    let xs = x + c * L + s * M, dys = dY + c * L + s * M, dxs = dX.ptr + c * L + s * M
                    for i in 0..<M { dxs[i] = a * dys[i] + b + cx * xs[i] }
                }
            }
        }
    }
}

/// y[i] = s * x[i] + b over n values.
@inline(__always)
func affine(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ s: Float, _ b: Float) {
    for i in 0..<n { y[i] = s * x[i] + b }
}

extension BatchNorm2d {
    /// y = max(0, y) after the affine step when fused.
    @inline(__always) func affine(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ s: Float, _ b: Float) {
        if fusedReLU {
            for i in 0..<n { y[i] = max(0, s * x[i] + b) }
        } else {
            for i in 0..<n { y[i] = s * x[i] + b }
        }
    }
}

/// (Σx, Σx²) in Double, accumulated in 8 Float lanes of blocks of 256 then folded into Double.
@inline(__always)
func sums(_ x: UnsafePointer<Float>, _ n: Int) -> (Double, Double) {
    var s = 0.0, q = 0.0
    var i = 0
    while i < n {
        let end = min(n, i + 256)
        var bs: Float = 0, bq: Float = 0
        while i < end { let v = x[i]; bs += v; bq += v * v; i += 1 }
        s += Double(bs); q += Double(bq)
    }
    return (s, q)
}

/// (Σ dY, Σ dY·x̂) with x̂ = (x − mean)·invStd, accumulated as in `sums`.
@inline(__always)
func gradSums(_ x: UnsafePointer<Float>, _ dY: UnsafePointer<Float>, _ n: Int, _ mean: Double, _ invStd: Double) -> (Double, Double) {
    var s = 0.0, q = 0.0
    let m = Float(mean)
    var i = 0
    while i < n {
        let end = min(n, i + 256)
        var bs: Float = 0, bq: Float = 0
        while i < end { let d = dY[i]; bs += d; bq += d * (x[i] - m); i += 1 }
        s += Double(bs); q += Double(bq)
    }
    return (s, q * invStd)
}

/// dY[i] = 0 where the ReLU output y[i] is 0.
@inline(__always)
func reluMask(_ dY: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) {
    for i in 0..<n where y[i] <= 0 { dY[i] = 0 }
}
