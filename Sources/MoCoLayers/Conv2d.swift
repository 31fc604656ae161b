import MoCoTensor

/// 2-D convolution without bias (as in torchvision's ResNets), on channel-major activations.
///
/// Forward, per chunk of samples:  y[K, n*HoWo] = w[K, C*k*k] @ im2col(x)[C*k*k, n*HoWo]
/// Backward:  dW[K, C*k*k] += dY[K, chunk] @ cols^T,  dcols = w^T @ dY[K, chunk],  dX += col2im(dcols)
/// A 1x1 stride-1 convolution skips im2col: y[K, N*HW] = w[K, C] @ x[C, N*HW].
public final class Conv2d {
    public let name: String
    public let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int
    public let weightOffset: Int
    let params: ParameterStore
    let workspace: Workspace
    /// Whether backward computes dX (false for the stem, whose input is the image).
    public var needsInputGrad = true

    public private(set) var batch = 0
    public private(set) var geometry = ConvGeometry(channels: 0, height: 0, width: 0, kernel: 1, stride: 1, padding: 0)
    public private(set) var y = FloatBuffer(count: 0)
    public private(set) var dX = FloatBuffer(count: 0)
    private var chunk = 1
    private var input: UnsafePointer<Float>?

    public init(_ name: String, params: ParameterStore, workspace: Workspace,
                inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0) {
        self.name = name
        self.inChannels = inChannels; self.outChannels = outChannels
        self.kernel = kernel; self.stride = stride; self.padding = padding
        self.params = params; self.workspace = workspace
        weightOffset = params.register("\(name).weight", shape: [outChannels, inChannels, kernel, kernel])
    }

    var isPointwise: Bool { kernel == 1 && stride == 1 && padding == 0 }

    /// Allocates outputs for a batch of `n` inputs of `h` x `w` and returns the output size.
    @discardableResult
    public func plan(batch n: Int, height h: Int, width w: Int, backward: Bool) -> (h: Int, w: Int) {
        geometry = ConvGeometry(channels: inChannels, height: h, width: w, kernel: kernel, stride: stride, padding: padding)
        let ho = geometry.outHeight, wo = geometry.outWidth
        precondition(ho > 0 && wo > 0, "\(name): input \(h)x\(w) too small for kernel \(kernel)")
        if batch != n || y.count != outChannels * n * ho * wo {
            y = FloatBuffer(count: outChannels * n * ho * wo)
        }
        let needDX = backward && needsInputGrad
        if needDX && dX.count != inChannels * n * h * w { dX = FloatBuffer(count: inChannels * n * h * w) }
        if !needDX { dX = FloatBuffer(count: 0) }
        batch = n
        if !isPointwise {
            chunk = max(1, min(n, im2colChunkFloats / max(1, geometry.rows * ho * wo)))
            workspace.reserve(geometry.rows * chunk * ho * wo)
        }
        return (ho, wo)
    }

    /// x: [C, N, H, W] -> y: [K, N, Ho, Wo]
    public func forward(_ x: UnsafePointer<Float>) {
        input = x
        let w = UnsafePointer(params.value(weightOffset))
        let hoWo = geometry.outHeight * geometry.outWidth
        let ldy = batch * hoWo
        if isPointwise {
            BLAS.sgemm(m: outChannels, n: ldy, k: inChannels, a: w, lda: inChannels, b: x, ldb: ldy, c: y.ptr, ldc: ldy)
            return
        }
        let rows = geometry.rows, cols = workspace.ptr
        var n0 = 0
        while n0 < batch {
            let nb = min(chunk, batch - n0)
            im2col(x, batch: batch, first: n0, count: nb, geometry: geometry, cols: cols)
            BLAS.sgemm(m: outChannels, n: nb * hoWo, k: rows, a: w, lda: rows, b: cols, ldb: nb * hoWo,
                       c: y.ptr + n0 * hoWo, ldc: ldy)
            n0 += nb
        }
    }

    /// dY: [K, N, Ho, Wo] -> dW (written, not accumulated) and dX: [C, N, H, W]
    public func backward(_ dY: UnsafePointer<Float>) {
        guard let x = input else { preconditionFailure("\(name): backward before forward") }
        let w = UnsafePointer(params.value(weightOffset))
        let dW = params.grad(weightOffset)
        let hoWo = geometry.outHeight * geometry.outWidth
        let ldy = batch * hoWo
        let needDX = needsInputGrad
        if isPointwise {
            // dW[K, C] = dY[K, NHW] @ x[C, NHW]^T ; dX[C, NHW] = w[K, C]^T @ dY
            BLAS.sgemm(transB: true, m: outChannels, n: inChannels, k: ldy, a: dY, lda: ldy, b: x, ldb: ldy,
                       c: dW, ldc: inChannels)
            if needDX {
                BLAS.sgemm(transA: true, m: inChannels, n: ldy, k: outChannels, a: w, lda: inChannels,
                           b: dY, ldb: ldy, c: dX.ptr, ldc: ldy)
            }
            return
        }
        let rows = geometry.rows, cols = workspace.ptr
        if needDX { dX.zero() }
        var n0 = 0
        while n0 < batch {
            let nb = min(chunk, batch - n0)
            im2col(x, batch: batch, first: n0, count: nb, geometry: geometry, cols: cols)
            BLAS.sgemm(transB: true, m: outChannels, n: rows, k: nb * hoWo, a: dY + n0 * hoWo, lda: ldy,
                       b: cols, ldb: nb * hoWo, beta: n0 == 0 ? 0 : 1, c: dW, ldc: rows)
            if needDX {
                BLAS.sgemm(transA: true, m: rows, n: nb * hoWo, k: outChannels, a: w, lda: rows,
                           b: dY + n0 * hoWo, ldb: ldy, c: cols, ldc: nb * hoWo)
                col2im(cols, batch: batch, first: n0, count: nb, geometry: geometry, dX: dX.ptr)
            }
            n0 += nb
        }
    }
}
