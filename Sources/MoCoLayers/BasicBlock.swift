import MoCoTensor

/// ResNet's basic block (He et al. 2016, fig. 2): two 3x3 convolutions with BatchNorm, a
/// shortcut (identity, or 1x1 convolution + BN named `downsample` where the shape changes),
/// and ReLU after the sum.   y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
public final class BasicBlock {
    public let conv1: Conv2d, bn1: BatchNorm2d, conv2: Conv2d, bn2: BatchNorm2d
    public let downsampleConv: Conv2d?, downsampleBN: BatchNorm2d?
    let add: AddReLU
    private var input: UnsafePointer<Float>?
    private var inputCount = 0
    /// Workers the shortcut's gradient sum is split over (elementwise: the same bits for any count).
    private let threads: Int

    public init(_ name: String, params: ParameterStore, buffers: ParameterStore, workspace: Workspace,
                inChannels: Int, outChannels: Int, stride: Int, engine: EngineConfig = EngineConfig()) {
        let T = engine.threads
        threads = T
        conv1 = Conv2d("\(name).conv1", params: params, workspace: workspace, inChannels: inChannels,
                       outChannels: outChannels, kernel: 3, stride: stride, padding: 1, engine: engine)
        bn1 = BatchNorm2d("\(name).bn1", params: params, buffers: buffers, channels: outChannels, fusedReLU: true, threads: T)
        conv2 = Conv2d("\(name).conv2", params: params, workspace: workspace, inChannels: outChannels,
                       outChannels: outChannels, kernel: 3, stride: 1, padding: 1, engine: engine)
        bn2 = BatchNorm2d("\(name).bn2", params: params, buffers: buffers, channels: outChannels, threads: T)
        add = AddReLU(threads: T)
        if stride != 1 || inChannels != outChannels {
            downsampleConv = Conv2d("\(name).downsample.0", params: params, workspace: workspace,
                                    inChannels: inChannels, outChannels: outChannels, kernel: 1, stride: stride, engine: engine)
            downsampleBN = BatchNorm2d("\(name).downsample.1", params: params, buffers: buffers, channels: outChannels, threads: T)
        } else {
            downsampleConv = nil; downsampleBN = nil
        }
    }

    public var batchNorms: [BatchNorm2d] { [bn1, bn2] + (downsampleBN.map { [$0] } ?? []) }
    public var convs: [Conv2d] { [conv1, conv2] + (downsampleConv.map { [$0] } ?? []) }
    public var y: FloatBuffer { add.y }
    /// Gradient with respect to the block's input (valid after `backward`).
    public var dX: FloatBuffer { conv1.dX }

    /// Shared buffers for the backward pass of a chain of blocks (see `plan`).
    public struct GradientSlots {
        /// dX of the block (the next block's dY in the backward pass).
        public var output: FloatBuffer
        /// Scratch used only inside this block, by buffers whose lifetimes do not overlap:
        ///  - `scratch[0]`: dX of bn2, then of bn1, then of the downsample BN;
        ///  - `scratch[1]`: dX of conv2, then of the downsample convolution;
        ///  - `scratch[2]`: bn1's output (conv2's input), written by the forward and written
        ///    again by `BatchNorm2d.recomputeOutput` in the backward, so that no block keeps it;
        ///    in the forward also the downsample BN's output, once conv2 has read bn1's.
        public var scratch: [FloatBuffer]
        public init(output: FloatBuffer, scratch: [FloatBuffer]) {
            precondition(scratch.count >= 3, "GradientSlots: 3 scratch buffers")
            self.output = output; self.scratch = scratch
        }
    }

    /// Whether bn1's output lives in shared scratch and is recomputed in the backward.
    private var recomputesBN1 = false

    /// Plans every buffer. Memory reuse:
    ///  - bn2 writes y straight into the block output, and the residual sum + ReLU runs in place
    ///    there (bn2's backward needs only its input);
    ///  - without backward (a key encoder) both BatchNorms and the sum run in place in the
    ///    convolution outputs;
    ///  - with `slots`, gradients go to buffers shared by all blocks of an encoder, and so does
    ///    bn1's output (recomputed from conv1's output in the backward);
    ///  - with `activations` (forward only: two buffers, neither of them the block's input),
    ///    conv1 writes into the first, conv2 (the output) into the second, and the downsample
    ///    convolution, which runs after conv2 has consumed conv1's output, into the first.
    @discardableResult
    public func plan(batch n: Int, height h: Int, width w: Int, backward: Bool,
                     slots: GradientSlots? = nil, activations: [FloatBuffer]? = nil) -> (h: Int, w: Int) {
        let sc = backward ? slots?.scratch : nil
        let act = backward ? nil : activations
        recomputesBN1 = sc != nil
        let (ho, wo) = conv1.plan(batch: n, height: h, width: w, backward: backward,
                                  gradient: backward ? slots?.output : nil, output: act?[0])
        bn1.plan(batch: n, spatial: ho * wo, backward: backward, output: backward ? sc?[2] : conv1.y, gradient: sc?[0])
        conv2.plan(batch: n, height: ho, width: wo, backward: backward, gradient: sc?[1], output: act?[1])
        let size = conv2.outChannels * n * ho * wo
        if backward {
            add.plan(count: size)
            bn2.plan(batch: n, spatial: ho * wo, backward: true, output: add.y, gradient: sc?[0])
        } else {
            bn2.plan(batch: n, spatial: ho * wo, backward: false, output: conv2.y)
            add.plan(count: size, output: conv2.y)
        }
        downsampleConv?.plan(batch: n, height: h, width: w, backward: backward, gradient: sc?[1], output: act?[0])
        if let dc = downsampleConv {
            // With slots, the downsample BN's output (read only by the residual sum) also goes
            // to scratch[2]: conv2 has consumed bn1's output there by then.
            downsampleBN?.plan(batch: n, spatial: ho * wo, backward: backward, output: backward ? sc?[2] : dc.y,
                               gradient: sc?[0])
        }
        inputCount = conv1.inChannels * n * h * w
        return (ho, wo)
    }

    /// x: [C, N, H, W] -> y: [K, N, Ho, Wo]
    public func forward(_ x: UnsafePointer<Float>, training: Bool) {
        input = x
        conv1.forward(x)
        bn1.forward(conv1.y.ptr, training: training)
        conv2.forward(bn1.y.ptr)
        bn2.forward(conv2.y.ptr, training: training)
        if let dc = downsampleConv, let db = downsampleBN {
            dc.forward(x)
            db.forward(dc.y.ptr, training: training)
            add.forward(bn2.y.ptr, db.y.ptr)   // in place: bn2.y is add.y
        } else {
            add.forward(bn2.y.ptr, x)
        }
    }

    /// dY: [K, N, Ho, Wo] (overwritten) -> dX: [C, N, H, W] in `self.dX`
    public func backward(_ dY: UnsafeMutablePointer<Float>) {
        add.backward(dY)                      // dY is now dZ, the gradient of the sum
        bn2.backward(dY)
        if recomputesBN1 { bn1.recomputeOutput() }   // conv2's input and bn1's ReLU mask
        conv2.backward(bn2.dX.ptr)
        bn1.backward(conv2.dX.ptr)            // masks conv2.dX by the fused ReLU
        conv1.backward(bn1.dX.ptr)
        let dX = conv1.dX.ptr
        // dX += the shortcut's gradient: [C, N, H, W]
        let shortcut: UnsafePointer<Float>
        if let dc = downsampleConv, let db = downsampleBN {
            db.backward(dY)
            dc.backward(db.dX.ptr)
            shortcut = UnsafePointer(dc.dX.ptr)
        } else {
            shortcut = UnsafePointer(dY)
        }
        Parallel.forRanges(inputCount, threads: threads, minimum: 1 << 15) { r in
            BLAS.axpy(n: r.count, alpha: 1, x: shortcut + r.lowerBound, y: dX + r.lowerBound)
        }
    }
}
