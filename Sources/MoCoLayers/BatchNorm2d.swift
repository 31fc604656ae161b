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
    /// Engine workers over channels.
    public let threads: Int

    public private(set) var batch = 0, spatial = 0
    public private(set) var y = FloatBuffer(count: 0)
    public private(set) var dX = FloatBuffer(count: 0)
    private var mean: [Double] = [], invStd: [Double] = []
    /// Per (channel, split) scale and shift of the last training forward: y = scale·x + shift.
    private var scale: [Float] = [], shift: [Float] = []
    private var stat: [Double] = []
    private var input: UnsafePointer<Float>?
    private var trainedForward = false

    public init(_ name: String, params: ParameterStore, buffers: ParameterStore, channels: Int, fusedReLU: Bool = false,
                threads: Int = 1) {
        self.name = name; self.channels = channels; self.fusedReLU = fusedReLU; self.threads = max(1, threads)
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

    /// Plans for `n` samples of `hw` values per channel.
    /// - output: a buffer (at least C·n·hw floats) to write y into instead of an own one, e.g.
    ///   the input itself (in place) when no backward needs x, or a buffer shared with the
    ///   layer that consumes y.
    /// - gradient: a buffer (at least C·n·hw floats) for dX, e.g. scratch shared across blocks.
    public func plan(batch n: Int, spatial hw: Int, backward: Bool,
                     output: FloatBuffer? = nil, gradient: FloatBuffer? = nil) {
        let size = channels * n * hw
        if let output {
            precondition(output.count >= size, "\(name): output buffer too small")
            y = output; ownsY = false
        } else if !ownsY || y.count != size {
            y = FloatBuffer(count: size); ownsY = true
        }
        if backward, let gradient {
            precondition(gradient.count >= size, "\(name): gradient buffer too small")
            dX = gradient; ownsDX = false
        } else if backward && (!ownsDX || dX.count != size) {
            dX = FloatBuffer(count: size); ownsDX = true
        }
        if !backward { dX = FloatBuffer(count: 0); ownsDX = true }
        batch = n; spatial = hw
    }
    private var ownsY = true, ownsDX = true

    /// x: [C, N, H, W] -> y: [C, N, H, W]
    ///
    /// Channels are split over `threads` workers; each channel's statistics are
    /// computed by one worker, so the result does not depend on the thread count. Without a
    /// reducer a worker normalises each channel right after its statistics (while it is in cache).
    public func forward(_ x: UnsafePointer<Float>, training: Bool) {
        input = x
        trainedForward = training
        let L = batch * spatial, C = channels
        let gamma = params.value(weightOffset), beta = params.value(biasOffset)
        let rm = buffers.value(meanOffset), rv = buffers.value(varOffset)
        let yp = y.ptr, relu = fusedReLU, eps = self.eps
        if !training {
            Parallel.forRanges(C, threads: threads) { r in
                for c in r {
                    let s = gamma[c] / (rv[c] + eps).squareRoot()
                    affine(x + c * L, yp + c * L, L, s, beta[c] - rm[c] * s, relu: relu)
                }
            }
            return
        }
        let S = splits
        precondition(batch % S == 0, "\(name): batch \(batch) not divisible by \(S) BN splits")
        let M = L / S
        if mean.count != C * S { mean = .init(repeating: 0, count: C * S); invStd = mean }
        if scale.count != C * S { scale = .init(repeating: 0, count: C * S); shift = scale }
        if stat.count != 2 * C * S { stat = .init(repeating: 0, count: 2 * C * S) }
        let workers = reducer?.workers ?? 1
        let count = Double(M * workers)
        let fuse = reducer == nil
        mean.withUnsafeMutableBufferPointer { meanB in
        invStd.withUnsafeMutableBufferPointer { invB in
        scale.withUnsafeMutableBufferPointer { scB in
        shift.withUnsafeMutableBufferPointer { shB in
        stat.withUnsafeMutableBufferPointer { stB in
            let st = stB.baseAddress!, mp = meanB.baseAddress!, ip = invB.baseAddress!
            let scp = scB.baseAddress!, shp = shB.baseAddress!
            // Mean and 1/σ of (c, s) from the sums; normalise when `apply`.
            func finish(_ c: Int, _ s: Int, apply: Bool) {
                let j = c * S + s
                let m = st[2 * j] / count
                let v = max(0, st[2 * j + 1] / count - m * m)
                mp[j] = m
                ip[j] = 1 / (v + Double(eps)).squareRoot()
                let sc = Double(gamma[c]) * ip[j]
                scp[j] = Float(sc)
                shp[j] = Float(Double(beta[c]) - m * sc)
                if apply {
                    affine(x + c * L + s * M, yp + c * L + s * M, M, scp[j], shp[j], relu: relu)
                }
            }
            Parallel.forRanges(C, threads: threads) { r in
                for c in r {
                    for s in 0..<S {
                        let (sum, sq) = sums(x + c * L + s * M, M)
                        st[2 * (c * S + s)] = sum
                        st[2 * (c * S + s) + 1] = sq
                        if fuse { finish(c, s, apply: true) }
                    }
                }
            }
            if !fuse {
                reducer?.sumAcrossWorkers(st, count: stB.count)
                Parallel.forRanges(C, threads: threads) { r in for c in r { for s in 0..<S { finish(c, s, apply: true) } } }
            }
            let mom = momentum
            for c in 0..<C {
                var meanSum = 0.0, varSum = 0.0
                for s in 0..<S {
                    let j = c * S + s
                    let m = mp[j]
                    let v = max(0, st[2 * j + 1] / count - m * m)
                    meanSum += m
                    varSum += count > 1 ? v * count / (count - 1) : v
                }
                rm[c] = (1 - mom) * rm[c] + mom * Float(meanSum / Double(S))
                rv[c] = (1 - mom) * rv[c] + mom * Float(varSum / Double(S))
            }
        }
        }
        }
        }
        }
        numBatchesTracked += 1
    }

    /// Writes y again from the saved input and the scale and shift of the last training
    /// forward, bit for bit what that forward wrote. A layer whose output buffer is shared
    /// scratch (overwritten by later layers) calls this before the backward passes that read
    /// y: the ReLU mask here and the next convolution's weight gradient. This trades one
    /// elementwise pass for keeping the activation (recomputation in the spirit of Chen et al.
    /// 2016, "Training Deep Nets with Sublinear Memory Cost").
    /// x: [C, N, H, W] (saved) -> y: [C, N, H, W]
    public func recomputeOutput() {
        guard let x = input else { preconditionFailure("\(name): recomputeOutput before forward") }
        precondition(trainedForward, "\(name): recomputeOutput needs a training-mode forward")
        let L = batch * spatial, S = splits, M = L / S
        let yp = y.ptr, relu = fusedReLU
        scale.withUnsafeBufferPointer { scB in
        shift.withUnsafeBufferPointer { shB in
            let scp = scB.baseAddress!, shp = shB.baseAddress!
            Parallel.forRanges(channels, threads: threads) { r in
                for c in r {
                    for s in 0..<S {
                        let j = c * S + s
                        affine(x + c * L + s * M, yp + c * L + s * M, M, scp[j], shp[j], relu: relu)
                    }
                }
            }
        }
        }
    }

    /// dY: [C, N, H, W] (masked in place by the fused ReLU) -> dGamma, dBeta, dX: [C, N, H, W]
    public func backward(_ dY: UnsafeMutablePointer<Float>) {
        guard let x = input else { preconditionFailure("\(name): backward before forward") }
        precondition(trainedForward, "\(name): backward needs a training-mode forward")
        let L = batch * spatial, S = splits, M = L / S, C = channels
        let gamma = params.value(weightOffset)
        let dGamma = params.grad(weightOffset), dBeta = params.grad(biasOffset)
        let yRelu: UnsafePointer<Float>? = fusedReLU ? UnsafePointer(y.ptr) : nil
        let workers = reducer?.workers ?? 1
        let count = Double(M * workers)
        let fuse = reducer == nil
        let dXp = dX.ptr
        mean.withUnsafeBufferPointer { meanB in
        invStd.withUnsafeBufferPointer { invB in
        stat.withUnsafeMutableBufferPointer { stB in
            let st = stB.baseAddress!, mp = meanB.baseAddress!, ip = invB.baseAddress!
            // dX of (c, s) from the (reduced) sums.
            func apply(_ c: Int, _ s: Int) {
                let j = c * S + s
                let sdy = st[2 * j], sdyx = st[2 * j + 1]
                let m = mp[j], inv = ip[j]
                let k = Double(gamma[c]) * inv
                // dX = k*dY - k/count*sdy - k/count*sdyx * (x - m)*inv
                let a = Float(k), b = Float(-k * sdy / count + k * sdyx / count * m * inv)
                let cx = Float(-k * sdyx / count * inv)
                let o = c * L + s * M
                affine2(dY + o, x + o, dXp + o, M, a, b, cx)
            }
            Parallel.forRanges(C, threads: threads) { r in
                for c in r {
                    for s in 0..<S {
                        let j = c * S + s
                        let o = c * L + s * M
                        let (sdy, sdyx) = gradSums(x + o, dY + o, M, mp[j], ip[j],
                                                   reluOutput: yRelu.map { $0 + o })
                        st[2 * j] = sdy
                        st[2 * j + 1] = sdyx
                    }
                    // Parameter gradients use this worker's sums: averaging gradients across
                    // workers then gives the gradient of the global loss.
                    var gSum = 0.0, bSum = 0.0
                    for s in 0..<S { bSum += st[2 * (c * S + s)]; gSum += st[2 * (c * S + s) + 1] }
                    dGamma[c] = Float(gSum)
                    dBeta[c] = Float(bSum)
                    if fuse { for s in 0..<S { apply(c, s) } }
                }
            }
            if !fuse {
                reducer?.sumAcrossWorkers(st, count: stB.count)
                Parallel.forRanges(C, threads: threads) { r in for c in r { for s in 0..<S { apply(c, s) } } }
            }
        }
        }
        }
    }
}
