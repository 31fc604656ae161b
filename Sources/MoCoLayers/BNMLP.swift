import MoCoTensor

/// The MLPs of MoCo v3 (Chen, Xie, He 2021, sec. 4 and the official `_build_mlp`): `layers`
/// linear layers without bias, each but the last followed by BatchNorm1d and ReLU, the last by
/// BatchNorm1d without affine parameters when `lastBN` (the projector) or by nothing (the
/// predictor). Parameter names follow `nn.Sequential`'s indices under `prefix`: for two layers
/// `<prefix>.0` Linear, `.1` BatchNorm1d, (`.2` ReLU), `.3` Linear, `.4` BatchNorm1d.
///
/// x: [N, in] -> y: [N, out]
public final class BNMLP {
    public let linears: [Linear]
    /// BatchNorm after every hidden layer, then the last one (if any).
    public let batchNorms: [BatchNorm1d]
    let relus: [ReLU]
    let lastBN: Bool

    public init(prefix: String, params: ParameterStore, buffers: ParameterStore, inFeatures: Int, hidden: Int,
                outFeatures: Int, layers: Int = 2, lastBN: Bool, threads: Int = 1) {
        precondition(layers >= 1)
        var lin: [Linear] = [], bns: [BatchNorm1d] = [], relus: [ReLU] = []
        var index = 0, width = inFeatures
        for l in 0..<layers {
            let out = l == layers - 1 ? outFeatures : hidden
            lin.append(Linear("\(prefix).\(index)", params: params, inFeatures: width, outFeatures: out, bias: false, threads: threads))
            if l < layers - 1 {
                bns.append(BatchNorm1d("\(prefix).\(index + 1)", params: params, buffers: buffers, features: out))
                relus.append(ReLU(threads: threads))
                index += 3
            } else if lastBN {
                bns.append(BatchNorm1d("\(prefix).\(index + 1)", params: params, buffers: buffers, features: out, affine: false))
            }
            width = out
        }
        linears = lin; batchNorms = bns; self.relus = relus; self.lastBN = lastBN
    }

    public var outFeatures: Int { linears.last!.outFeatures }
    /// Width of the hidden layers (the output width when there are none).
    public var hidden: Int { linears[0].outFeatures }
    /// Offset of the first parameter (the first linear layer's weight).
    public var firstOffset: Int { linears[0].weightOffset }

    public func plan(batch n: Int, backward: Bool) {
        for l in linears { l.plan(batch: n, backward: backward) }
        for b in batchNorms { b.plan(batch: n, backward: backward) }
        for (r, l) in zip(relus, linears) { r.plan(count: n * l.outFeatures, backward: backward) }
    }

    /// Output of the last forward: [N, out].
    public var y: UnsafeMutablePointer<Float> { lastBN ? batchNorms.last!.y.ptr : linears.last!.y.ptr }
    /// Gradient of the last backward with respect to the input: [N, in].
    public var dX: UnsafeMutablePointer<Float> { linears[0].dX.ptr }

    /// x: [N, in] -> y: [N, out]
    public func forward(_ x: UnsafePointer<Float>, training: Bool) {
        var h = x
        for (l, lin) in linears.enumerated() {
            lin.forward(h)
            if l < relus.count {
                batchNorms[l].forward(lin.y.ptr, training: training)
                relus[l].forward(batchNorms[l].y.ptr)
                h = UnsafePointer(relus[l].y.ptr)
            } else if lastBN {
                batchNorms[l].forward(lin.y.ptr, training: training)
            }
        }
    }

    /// dY: [N, out] -> parameter gradients, dX: [N, in]
    public func backward(_ dY: UnsafePointer<Float>) {
        var g = dY
        for l in stride(from: linears.count - 1, through: 0, by: -1) {
            if l < relus.count {
                relus[l].backward(g)
                batchNorms[l].backward(relus[l].dX.ptr)
                g = UnsafePointer(batchNorms[l].dX.ptr)
            } else if lastBN {
                batchNorms[l].backward(g)
                g = UnsafePointer(batchNorms[l].dX.ptr)
            }
            linears[l].backward(g)
            g = UnsafePointer(linears[l].dX.ptr)
        }
    }
}
