import MoCoTensor

/// 2-D convolution without bias (as in torchvision's ResNets), on channel-major activations.
///
/// Forward, per chunk of samples:  y[K, n*HoWo] = w[K, C*k*k] @ im2col(x)[C*k*k, n*HoWo]
/// Backward:  dW[K, C*k*k] += dY[K, chunk] @ cols^T, and
///  - stride 1: dX is the convolution of dY with the flipped, transposed kernel
///    wT[C, K, k, k] = w[K, C, k-1-i, k-1-j] and padding k-1-p (the adjoint of a stride-1
///    convolution), so dX[C, chunk] = wT[C, K*k*k] @ im2col(dY) is written directly;
///  - otherwise: dcols = w^T @ dY[K, chunk],  dX += col2im(dcols).
/// A 1x1 stride-1 convolution skips im2col: y[K, N*HW] = w[K, C] @ x[C, N*HW].
/// A 3x3 stride-1 padding-1 convolution with at least `ConvAlgorithm.winogradMinChannels`
/// input and output channels runs the forward and dX through Winograd's F(m×m, 3×3)
/// (`WinogradVariant`) unless the layer's `engine.conv` is `.im2col`, and its dW too unless
/// `engine.weightGrad` is `.im2col` (dU = Σ_tiles (A dY Aᵀ) ⊙ (Bᵀ x B), dW = Gᵀ dU G).
///
/// A strided convolution's forward runs on `DirectConv` (no im2col columns) where it applies,
/// unless the layer's `engine.strided` is `.im2col`.
///
/// Parallelism: the batch is cut into `engine.threads` contiguous sample ranges; each worker
/// runs im2col and single-threaded sgemm on its own range and its own slice of the workspace.
/// The weight gradient of worker t > 0 goes to a partial buffer; the partials are added in
/// worker order afterwards, so dW is reproducible bit for bit for a given thread count.
public final class Conv2d {
    public let name: String
    public let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int
    public let weightOffset: Int
    let params: ParameterStore
    let workspace: Workspace
    /// Whether backward computes dX (false for the stem, whose input is the image).
    public var needsInputGrad = true
    /// Workers, the algorithm of a 3x3 stride-1 padding-1 shape, and chunk budgets.
    public let engine: EngineConfig

    public private(set) var batch = 0
    public private(set) var geometry = ConvGeometry(channels: 0, height: 0, width: 0, kernel: 1, stride: 1, padding: 0)
    public private(set) var y = FloatBuffer(count: 0)
    public private(set) var dX = FloatBuffer(count: 0)
    /// Samples per im2col chunk of one worker.
    private var chunk = 1
    /// Floats of one worker's slice of the workspace (columns).
    private var sliceFloats = 0
    /// Workers the workspace was planned for.
    private var plannedWorkers = 1
    private var input: UnsafePointer<Float>?
    private var ownsDX = true, ownsY = true
    /// The Winograd variant this layer was planned with (nil: im2col).
    public private(set) var winograd: WinogradVariant?
    /// Samples per Winograd chunk of one worker.
    private var winogradChunk = 1
    /// Whether backward computes dW in the Winograd domain (planned with `winograd`).
    private var winogradWeightGrad = false
    /// Whether the forward runs on `DirectConv` (a strided convolution).
    public private(set) var direct = false

    public init(_ name: String, params: ParameterStore, workspace: Workspace,
                inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                engine: EngineConfig = EngineConfig()) {
        self.name = name
        self.engine = engine
        self.inChannels = inChannels; self.outChannels = outChannels
        self.kernel = kernel; self.stride = stride; self.padding = padding
        self.params = params; self.workspace = workspace
        weightOffset = params.register("\(name).weight", shape: [outChannels, inChannels, kernel, kernel])
    }

    var isPointwise: Bool { kernel == 1 && stride == 1 && padding == 0 }
    /// dX as a convolution of dY (stride 1, padding at most k - 1).
    var transposedBackward: Bool { stride == 1 && padding <= kernel - 1 && !isPointwise }
    /// Geometry of the dX convolution over dY: [K, N, Ho, Wo] -> [C, N, H, W].
    var adjointGeometry: ConvGeometry {
        ConvGeometry(channels: outChannels, height: geometry.outHeight, width: geometry.outWidth,
                     kernel: kernel, stride: 1, padding: kernel - 1 - padding)
    }

    /// Allocates outputs for a batch of `n` inputs of `h` x `w` and returns the output size.
    @discardableResult
    /// `gradient`: a buffer (at least C·n·h·w floats) for dX instead of an own one, e.g.
    /// scratch shared across blocks (only the first C·n·h·w floats are meaningful).
    /// `output`: a buffer (at least K·n·Ho·Wo floats) for y instead of an own one, e.g. an
    /// activation buffer shared across the blocks of a forward-only encoder.
    public func plan(batch n: Int, height h: Int, width w: Int, backward: Bool,
                     gradient: FloatBuffer? = nil, output: FloatBuffer? = nil) -> (h: Int, w: Int) {
        geometry = ConvGeometry(channels: inChannels, height: h, width: w, kernel: kernel, stride: stride, padding: padding)
        let ho = geometry.outHeight, wo = geometry.outWidth
        precondition(ho > 0 && wo > 0, "\(name): input \(h)x\(w) too small for kernel \(kernel)")
        if let output {
            precondition(output.count >= outChannels * n * ho * wo, "\(name): output buffer too small")
            y = output; ownsY = false
        } else if !ownsY || y.count != outChannels * n * ho * wo {
            y = FloatBuffer(count: outChannels * n * ho * wo); ownsY = true
        }
        let needDX = backward && needsInputGrad
        if needDX, let gradient {
            precondition(gradient.count >= inChannels * n * h * w, "\(name): gradient buffer too small")
            dX = gradient; ownsDX = false
        } else if needDX && (!ownsDX || dX.count != inChannels * n * h * w) {
            dX = FloatBuffer(count: inChannels * n * h * w); ownsDX = true
        }
        if !needDX { dX = FloatBuffer(count: 0); ownsDX = true }
        batch = n
        if !isPointwise {
            plannedWorkers = max(1, min(engine.threads, n))
            let perWorker = (n + plannedWorkers - 1) / plannedWorkers
            winograd = kernel == 3 && stride == 1 && padding == 1
                && min(inChannels, outChannels) >= ConvAlgorithm.winogradMinChannels ? engine.conv.variant(height: h, width: w) : nil
            var slice = 0
            if let v = winograd {
                // Winograd forward and dX; im2col(x) only for dW.
                // Whole groups of 8 samples (the transforms' vector lanes): as many as fit the
                // chunk budget, and at least enough that the chunk's transformed tiles are as
                // large as U (α²·K·C floats), which every chunk reads and OpenBLAS packs again:
                // with 256-512 channels on 4x4-8x8 maps a budget-sized chunk has only 8-32 GEMM
                // columns, and U's traffic then costs more than the multiplications.
                let perGroup = v.workspaceFloats(inChannels: inChannels, outChannels: outChannels,
                                                 height: h, width: w, samples: 8)
                let filter = v.filterFloats(inChannels: inChannels, outChannels: outChannels)
                let groups = max(engine.winogradChunkFloats / perGroup, (filter + perGroup - 1) / perGroup, 1)
                winogradChunk = min(perWorker, 8 * groups)
                slice = v.workspaceFloats(inChannels: inChannels, outChannels: outChannels,
                                          height: h, width: w, samples: winogradChunk)
            }
            winogradWeightGrad = backward && winograd != nil && engine.weightGrad == .winograd
            direct = engine.strided == .direct && DirectConv.applies(geometry)
            // The direct kernel's phase planes.
            if direct { slice = DirectConv.workspaceFloats(geometry) }
            if let v = winograd, winogradWeightGrad {
                // The worker's dU [α², K, C] after its Winograd workspace.
                slice += v.filterFloats(inChannels: inChannels, outChannels: outChannels)
            }
            // Rows of the columns: im2col(x) and, for the adjoint convolution, im2col(dY).
            let adjointCols = needDX && transposedBackward && winograd == nil
            let rows = max(geometry.rows, adjointCols ? outChannels * kernel * kernel : 0)
            let perSample = rows * max(ho * wo, adjointCols ? h * w : 0)
            chunk = max(1, min(perWorker, engine.im2colChunkFloats / max(1, perSample)))
            if (winograd == nil && (backward || !direct)) || (backward && !winogradWeightGrad) { slice = max(slice, chunk * perSample) }
            sliceFloats = (slice + 15) & ~15
            var total = plannedWorkers * sliceFloats
            let wCount = partialFloats
            // Partial dW of workers 1..<T (also counted with Winograd, whose filter area follows them).
            if backward || winograd != nil || direct { total += (plannedWorkers - 1) * wCount }
            // The transformed filter (Winograd, forward and adjoint in turn), or the flipped
            // kernel of the adjoint im2col convolution.
            if let v = winograd {
                total += v.filterFloats(inChannels: inChannels, outChannels: outChannels)
            } else if (backward && adjointCols) || direct {
                total += wCount   // the flipped kernel, or the direct kernel's packed filter
            }
            workspace.reserve(total)
        }
        return (ho, wo)
    }

    /// Start of the filter area of the workspace: after the workers' slices and the partial
    /// weight gradients of workers 1..<T.
    private var filterArea: UnsafeMutablePointer<Float> {
        workspace.ptr + plannedWorkers * sliceFloats + (plannedWorkers - 1) * partialFloats
    }

    /// The fused Winograd convolution of the whole batch, x: [inChannels, N, H, W] with the
    /// transformed filter u -> y: [outChannels, N, H, W], in groups of 8 samples handed to the
    /// workers as they become free: each group's outputs are the same bits whichever worker
    /// computes them (every lane of the kernel is one sample). Forward, and dX with the adjoint filter.
    private func fusedGroups(_ v: WinogradVariant, _ x: UnsafePointer<Float>, inChannels: Int, outChannels: Int,
                             filter u: UnsafePointer<Float>, output y: UnsafeMutablePointer<Float>) {
        let N = batch, H = geometry.height, W = geometry.width, ws = workspace.ptr, slice = sliceFloats
        Parallel.dynamic(plannedWorkers, items: (N + 7) / 8) { t, group in
            v.conv3x3(x, batch: N, first: group * 8, count: min(8, N - group * 8), inChannels: inChannels,
                      outChannels: outChannels, height: H, width: W, filter: u, output: y, workspace: ws + t * slice)
        }
    }

    /// Floats of one worker's partial weight gradient, K·C·k·k rounded up to 16.
    private var partialFloats: Int { (outChannels * geometry.rows + 15) & ~15 }

    /// x: [C, N, H, W], w: [K, C, k, k] -> y: [K, N, Ho, Wo]
    public func forward(_ x: UnsafePointer<Float>) {
        input = x
        let w = UnsafePointer(params.value(weightOffset))
        let hoWo = geometry.outHeight * geometry.outWidth
        let ldy = batch * hoWo
        if isPointwise {
            BLAS.sgemm(m: outChannels, n: ldy, k: inChannels, a: w, lda: inChannels, b: x, ldb: ldy, c: y.ptr, ldc: ldy,
                       threads: engine.threads)
            return
        }
        let rows = geometry.rows, g = geometry, N = batch, K = outChannels, chunk = self.chunk
        let ws = workspace.ptr, slice = sliceFloats, yp = y.ptr
        let T = plannedWorkers
        if let v = winograd {
            // u: [α², K, C] after the workers' slices and the partial weight gradients.
            let u = filterArea
            v.transformFilter(w, outChannels: K, inChannels: inChannels, adjoint: false, into: u, threads: engine.threads)
            let C = inChannels, H = g.height, W = g.width, wc = winogradChunk
            if v.runsFused(inChannels: C, outChannels: K, width: W) {
                fusedGroups(v, x, inChannels: C, outChannels: K, filter: u, output: yp)
                return
            }
            Parallel.run(T) { t in
                let range = Parallel.partition(N, parts: T, t)
                var n0 = range.lowerBound
                while n0 < range.upperBound {
                    let nb = min(wc, range.upperBound - n0)
                    v.conv3x3(x, batch: N, first: n0, count: nb, inChannels: C, outChannels: K, height: H, width: W,
                              filter: u, output: yp, workspace: ws + t * slice)
                    n0 += nb
                }
            }
            return
        }
        if direct {
            // wp: the filter in the kernel's order; groups of 8 samples handed to the workers
            // as they become free (each sample's outputs are the same bits on any worker).
            let wp = filterArea
            DirectConv.packFilter(w, outChannels: K, geometry: g, into: wp)
            Parallel.dynamic(T, items: (N + 7) / 8) { t, group in
                DirectConv.forward(x, batch: N, first: group * 8, count: min(8, N - group * 8), geometry: g,
                                   outChannels: K, filter: wp, output: yp, workspace: ws + t * slice)
            }
            return
        }
        Parallel.run(T) { t in
            let cols = ws + t * slice
            let range = Parallel.partition(N, parts: T, t)
            var n0 = range.lowerBound
            while n0 < range.upperBound {
                let nb = min(chunk, range.upperBound - n0)
                im2col(x, batch: N, first: n0, count: nb, geometry: g, cols: cols)
                BLAS.sgemm(m: K, n: nb * hoWo, k: rows, a: w, lda: rows, b: cols, ldb: nb * hoWo,
                           c: yp + n0 * hoWo, ldc: ldy)
                n0 += nb
            }
        }
    }

    /// dY: [K, N, Ho, Wo] -> dW: [K, C, k, k] (written, not accumulated) and dX: [C, N, H, W]
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
                       c: dW, ldc: inChannels, threads: engine.threads)
            if needDX {
                BLAS.sgemm(transA: true, m: inChannels, n: ldy, k: outChannels, a: w, lda: inChannels,
                           b: dY, ldb: ldy, c: dX.ptr, ldc: ldy, threads: engine.threads)
            }
            return
        }
        let rows = geometry.rows, g = geometry, N = batch, K = outChannels, C = inChannels, chunk = self.chunk
        let HW = g.height * g.width, ldx = N * HW
        let kk = kernel * kernel
        let T = plannedWorkers, slice = sliceFloats, wc = winogradChunk
        let ws = workspace.ptr
        let wCount = partialFloats
        let partials = ws + plannedWorkers * slice
        let wino = needDX ? winograd : nil
        let winogradDW = winogradWeightGrad ? winograd : nil
        let adjoint = needDX && transposedBackward && wino == nil
        let wT = filterArea
        let ag = adjointGeometry
        let dXp = needDX ? dX.ptr : ws   // unused when !needDX
        // dX by the fused Winograd kernel: its own region after the weight gradient's, with
        // groups of 8 samples handed out dynamically (as in `forward`).
        let dynamicDX = wino?.runsFused(inChannels: K, outChannels: C, width: g.width) ?? false
        if let v = wino {
            // u: [α², C, K], the Winograd filter of the flipped, transposed kernel.
            v.transformFilter(w, outChannels: K, inChannels: C, adjoint: true, into: wT, threads: engine.threads)
        } else if adjoint {
            // wT[c, (k*kh + i)*kw + j] = w[k, c, kh-1-i, kw-1-j]
            for k in 0..<K {
                for c in 0..<C {
                    let src = w + (k * C + c) * kk, dst = wT + (c * K + k) * kk
                    for e in 0..<kk { dst[e] = src[kk - 1 - e] }
                }
            }
        }
        Parallel.run(T) { t in
            let cols = ws + t * slice
            let dWt = t == 0 ? dW : partials + (t - 1) * wCount
            let range = Parallel.partition(N, parts: T, t)
            if needDX && !adjoint && wino == nil {   // col2im adds into dX; Winograd writes it
                for c in 0..<C { (dXp + c * ldx + range.lowerBound * HW).update(repeating: 0, count: range.count * HW) }
            }
            var n0 = range.lowerBound
            var first = true
            if let v = winogradDW {
                // dU[α², K, C] over the worker's samples, then dW = Gᵀ dU G.
                let dU = cols + v.workspaceFloats(inChannels: C, outChannels: K, height: g.height, width: g.width, samples: wc)
                while n0 < range.upperBound {
                    let nb = min(wc, range.upperBound - n0)
                    v.weightGrad3x3(x, dY, batch: N, first: n0, count: nb, inChannels: C, outChannels: K,
                                    height: g.height, width: g.width, gradient: dU, accumulate: !first, workspace: cols)
                    first = false
                    n0 += nb
                }
                if !first { v.filterGradient(dU, outChannels: K, inChannels: C, into: dWt) }
            }
            while winogradDW == nil && n0 < range.upperBound {
                let nb = min(chunk, range.upperBound - n0)
                im2col(x, batch: N, first: n0, count: nb, geometry: g, cols: cols)
                BLAS.sgemm(transB: true, m: K, n: rows, k: nb * hoWo, a: dY + n0 * hoWo, lda: ldy,
                           b: cols, ldb: nb * hoWo, beta: first ? 0 : 1, c: dWt, ldc: rows)
                first = false
                if adjoint {
                    im2col(dY, batch: N, first: n0, count: nb, geometry: ag, cols: cols)
                    BLAS.sgemm(m: C, n: nb * HW, k: K * kk, a: wT, lda: K * kk, b: cols, ldb: nb * HW,
                               c: dXp + n0 * HW, ldc: ldx)
                } else if needDX && wino == nil {
                    BLAS.sgemm(transA: true, m: rows, n: nb * hoWo, k: K, a: w, lda: rows,
                               b: dY + n0 * hoWo, ldb: ldy, c: cols, ldc: nb * hoWo)
                    col2im(cols, batch: N, first: n0, count: nb, geometry: g, dX: dXp)
                }
                n0 += nb
            }
            if first { dWt.update(repeating: 0, count: K * rows) }
            if let v = wino, !dynamicDX {
                // dX = the stride-1 'same' convolution of dY with the flipped, transposed kernel.
                n0 = range.lowerBound
                while n0 < range.upperBound {
                    let nb = min(wc, range.upperBound - n0)
                    v.conv3x3(dY, batch: N, first: n0, count: nb, inChannels: K, outChannels: C,
                              height: g.height, width: g.width, filter: wT, output: dXp, workspace: cols)
                    n0 += nb
                }
            }
        }
        if let v = wino, dynamicDX { fusedGroups(v, dY, inChannels: K, outChannels: C, filter: wT, output: dXp) }
        // Partial weight gradients, added in worker order.
        for t in 1..<max(1, T) { BLAS.axpy(n: K * rows, alpha: 1, x: partials + (t - 1) * wCount, y: dW) }
    }
}
