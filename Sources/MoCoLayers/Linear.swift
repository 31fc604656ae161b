import MoCoTensor

/// Fully connected layer (PyTorch's `nn.Linear`): y = x @ W^T + b, or y = x @ W^T with
/// `bias: false` (MoCo v3's MLPs). Backward: dW = dY^T @ x, db = Σ_n dY, dX = dY @ W.
public final class Linear {
    public let name: String
    public let inFeatures: Int, outFeatures: Int
    /// Offsets in the parameters (biasOffset -1 without bias).
    public let weightOffset: Int, biasOffset: Int
    public let hasBias: Bool
    let params: ParameterStore
    public var needsInputGrad = true
    /// Engine workers of the GEMMs.
    public let threads: Int
    public private(set) var batch = 0
    public private(set) var y = FloatBuffer(count: 0)
    public private(set) var dX = FloatBuffer(count: 0)
    private var input: UnsafePointer<Float>?

    public init(_ name: String, params: ParameterStore, inFeatures: Int, outFeatures: Int, bias: Bool = true, threads: Int = 1) {
        hasBias = bias
        self.threads = max(1, threads)
        self.name = name; self.inFeatures = inFeatures; self.outFeatures = outFeatures
        self.params = params
        weightOffset = params.register("\(name).weight", shape: [outFeatures, inFeatures])
        biasOffset = bias ? params.register("\(name).bias", shape: [outFeatures]) : -1
    }

    public func plan(batch n: Int, backward: Bool) {
        if y.count != n * outFeatures { y = FloatBuffer(count: n * outFeatures) }
        let needDX = backward && needsInputGrad
        if needDX && dX.count != n * inFeatures { dX = FloatBuffer(count: n * inFeatures) }
        if !needDX { dX = FloatBuffer(count: 0) }
        batch = n
    }

    /// x: [N, In], w: [Out, In], b: [Out] -> y: [N, Out]
    public func forward(_ x: UnsafePointer<Float>) {
        input = x
        if hasBias {
            let b = params.value(biasOffset)
            for n in 0..<batch { (y.ptr + n * outFeatures).update(from: b, count: outFeatures) }
        }
        BLAS.sgemm(transB: true, m: batch, n: outFeatures, k: inFeatures, a: x, lda: inFeatures,
                   b: params.value(weightOffset), ldb: inFeatures, beta: hasBias ? 1 : 0, c: y.ptr, ldc: outFeatures,
                   threads: threads)
    }

    /// dY: [N, Out] -> dW: [Out, In], db: [Out], dX: [N, In]
    public func backward(_ dY: UnsafePointer<Float>) {
        guard let x = input else { preconditionFailure("\(name): backward before forward") }
        let dW = params.grad(weightOffset)
        BLAS.sgemm(transA: true, m: outFeatures, n: inFeatures, k: batch, a: dY, lda: outFeatures,
                   b: x, ldb: inFeatures, c: dW, ldc: inFeatures, threads: threads)
        if hasBias {
            let db = params.grad(biasOffset)
            db.update(repeating: 0, count: outFeatures)
            for n in 0..<batch {
                let row = dY + n * outFeatures
                for o in 0..<outFeatures { db[o] += row[o] }
            }
        }
        if needsInputGrad {
            BLAS.sgemm(m: batch, n: inFeatures, k: outFeatures, a: dY, lda: outFeatures,
                       b: params.value(weightOffset), ldb: inFeatures, c: dX.ptr, ldc: inFeatures, threads: threads)
        }
    }
}
