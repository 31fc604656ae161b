import Foundation
import MoCoTensor

/// A ResNet backbone with a projection head: images [N, C, H, W] -> features [N, d]
/// (after global average pooling) -> projection [N, dim].
///
/// Parameters live in one `ParameterStore` (values and gradients contiguous, in forward order),
/// BatchNorm running statistics in a second store, so that gradient allreduce, SGD and the
/// momentum update are each one pass over one buffer.
public final class Encoder {
    public let architecture: Architecture
    public let head: HeadKind
    public let inChannels: Int
    public let dim: Int
    public let params: ParameterStore
    public let buffers = ParameterStore(withGradients: false)
    /// Scratch of the convolutions (im2col columns, Winograd tiles and filters); may be shared
    /// with other encoders that never run at the same time (the MoCo key encoder uses the
    /// query encoder's).
    public let workspace: Workspace
    /// Workers and convolution algorithm of every layer.
    public let engine: EngineConfig

    public let conv1: Conv2d
    public let bn1: BatchNorm2d
    public let blocks: [BasicBlock]
    let pool = GlobalAvgPool()
    public let fc: Linear?                 // linear head
    public let fc0: Linear?, fc2: Linear?  // MLP head
    let headReLU: ReLU
    /// MoCo v3's projector (head `mlp-bn`).
    public let projector: BNMLP?
    /// MoCo v3's predictor after the projector (query encoder only): its parameters are
    /// registered last, so the first `params.count - predictor` parameters have the layout of
    /// an encoder without it (the momentum update and state copies use that prefix).
    public let predictor: BNMLP?
    /// Every linear layer of the head and predictor, in forward order.
    public let linears: [Linear]
    /// Every BatchNorm1d of the head and predictor, in forward order.
    public let headBatchNorms: [BatchNorm1d]

    public private(set) var batch = 0, height = 0, width = 0
    private var plannedBackward = false
    private var input = FloatBuffer(count: 0)
    private var mapSize = (h: 0, w: 0)
    /// Height and width of each block's output map, as planned.
    public private(set) var blockMapSizes: [(h: Int, w: Int)] = []
    private var gradientSlots: [FloatBuffer] = []
    private var activationSlots: [FloatBuffer] = []
    /// Whether `activationSlots` are another encoder's scratch (see `plan(borrowing:)`).
    private var borrowedSlots = false

    /// All BatchNorm layers in forward order.
    public let batchNorms: [BatchNorm2d]
    public let convs: [Conv2d]

    /// - Parameters:
    ///   - hidden: width of the `mlp-bn` projector's and the predictor's hidden layer (default 4·d).
    ///   - predictor: add MoCo v3's predictor (Linear(dim, hidden), BN, ReLU, Linear(hidden, dim)).
    public init(architecture: Architecture, head: HeadKind, inChannels: Int, dim: Int = 128, trainable: Bool = true,
                engine: EngineConfig = EngineConfig(), workspace: Workspace = Workspace(), hidden: Int? = nil,
                predictor: Bool = false) {
        self.architecture = architecture; self.head = head; self.inChannels = inChannels; self.dim = dim
        self.workspace = workspace
        self.engine = engine
        let T = engine.threads
        let params = ParameterStore(withGradients: trainable)
        self.params = params
        conv1 = Conv2d("conv1", params: params, workspace: workspace, inChannels: inChannels,
                       outChannels: architecture.stemWidth, kernel: 3, stride: 1, padding: 1, engine: engine)
        conv1.needsInputGrad = false
        bn1 = BatchNorm2d("bn1", params: params, buffers: buffers, channels: architecture.stemWidth, fusedReLU: true, threads: T)
        var blocks: [BasicBlock] = []
        var c = architecture.stemWidth
        for (s, stage) in architecture.stages.enumerated() {
            for b in 0..<stage.blocks {
                blocks.append(BasicBlock("layer\(s + 1).\(b)", params: params, buffers: buffers, workspace: workspace,
                                         inChannels: c, outChannels: stage.width, stride: b == 0 ? stage.stride : 1,
                                         engine: engine))
                c = stage.width
            }
        }
        self.blocks = blocks
        let d = architecture.featureDim
        let width = hidden ?? 4 * d
        switch head {
        case .linear:
            fc = Linear("fc", params: params, inFeatures: d, outFeatures: dim, threads: T); fc0 = nil; fc2 = nil; projector = nil
        case .mlp:
            fc = nil; projector = nil
            fc0 = Linear("fc.0", params: params, inFeatures: d, outFeatures: d, threads: T)
            fc2 = Linear("fc.2", params: params, inFeatures: d, outFeatures: dim, threads: T)
        case .mlpBN:
            fc = nil; fc0 = nil; fc2 = nil
            projector = BNMLP(prefix: "fc", params: params, buffers: buffers, inFeatures: d, hidden: width, outFeatures: dim,
                              lastBN: true, threads: T)
        }
        self.predictor = predictor
            ? BNMLP(prefix: "predictor", params: params, buffers: buffers, inFeatures: dim, hidden: width, outFeatures: dim,
                    lastBN: false, threads: T)
            : nil
        headReLU = ReLU(threads: T)
        linears = [fc, fc0, fc2].compactMap { $0 } + (projector?.linears ?? []) + (self.predictor?.linears ?? [])
        headBatchNorms = (projector?.batchNorms ?? []) + (self.predictor?.batchNorms ?? [])
        batchNorms = [bn1] + blocks.flatMap(\.batchNorms)
        convs = [conv1] + blocks.flatMap(\.convs)
        params.finalize()
        buffers.finalize()
        for bn in batchNorms { bn.resetParameters() }
        for bn in headBatchNorms { bn.resetParameters() }
    }

    public var featureDim: Int { architecture.featureDim }

    /// Number of contiguous sample chunks each BatchNorm normalises separately (split BN).
    public var bnSplits: Int {
        get { bn1.splits }
        set {
            for bn in batchNorms { bn.splits = newValue }
            for bn in headBatchNorms { bn.splits = newValue }
        }
    }

    /// Synchronised-BN reducer for every BatchNorm (nil: local statistics).
    public func setBatchStatReducer(_ r: BatchStatReducer?) { for bn in batchNorms { bn.reducer = r } }

    /// Plans every buffer for a batch shape. Cheap when the shape is unchanged.
    ///
    /// `donor` (forward only): an encoder planned with backward for the same shape whose
    /// gradient scratch this one borrows for its activations, so that a MoCo key encoder costs
    /// no activation memory of its own. Valid only when the two never hold live activations at
    /// the same time: the key forward ends (its projection is in the head's own buffer) before
    /// the query forward starts, and the query's scratch is dead outside its forward/backward.
    public func plan(batch n: Int, height h: Int, width w: Int, backward: Bool, borrowing donor: Encoder? = nil) {
        if n == batch && h == height && w == width && backward == plannedBackward
            && (donor.map { activationSlots.first === $0.gradientSlots.first } ?? !borrowedSlots) { return }
        precondition(!backward || params.withGradients, "plan(backward:) on an encoder without gradients")
        input = FloatBuffer(count: n * inChannels * h * w)
        // Gradients of the blocks live in 2 + 3 buffers shared by all blocks (block i's dX in
        // output slot i % 2, its internal gradients and bn1 output in the scratch slots; see
        // `BasicBlock.GradientSlots`), each as large as the largest activation (the stem's
        // output or a block's input).
        var largest = architecture.stemWidth * n * h * w   // the stem is a 3x3 stride-1 'same' conv
        var (sh, sw) = (h, w)
        for b in blocks {
            let ho = (sh + 2 - 3) / b.conv1.stride + 1, wo = (sw + 2 - 3) / b.conv1.stride + 1
            largest = max(largest, b.conv1.inChannels * n * sh * sw, b.conv1.outChannels * n * ho * wo)
            (sh, sw) = (ho, wo)
        }
        // Forward only: every activation lives in 3 buffers shared by all blocks (a block reads
        // its input from one and writes into the other two), each as large as the largest
        // activation.
        if !backward, let donor, donor.gradientSlots.count >= 3, donor.gradientSlots.allSatisfy({ $0.count >= largest }) {
            activationSlots = Array(donor.gradientSlots.prefix(3))
            borrowedSlots = true
        } else if !backward {
            let reuse = !borrowedSlots
            borrowedSlots = false
            activationSlots = (0..<3).map { i in
                reuse && i < activationSlots.count && activationSlots[i].count == largest ? activationSlots[i]
                    : FloatBuffer(count: largest)
            }
        } else {
            activationSlots = []
            borrowedSlots = false
        }
        var (ch, cw) = conv1.plan(batch: n, height: h, width: w, backward: backward,
                                  output: backward ? nil : activationSlots[0])
        if backward {
            gradientSlots = (0..<5).map { i in
                i < gradientSlots.count && gradientSlots[i].count == largest ? gradientSlots[i] : FloatBuffer(count: largest)
            }
        } else {
            gradientSlots = []
        }
        bn1.plan(batch: n, spatial: ch * cw, backward: backward, output: backward ? nil : conv1.y,
                 gradient: backward ? gradientSlots[2] : nil)
        var current = 0   // activation slot holding the block input (forward only)
        var sizes: [(h: Int, w: Int)] = []
        for (i, b) in blocks.enumerated() {
            let slots = backward ? BasicBlock.GradientSlots(output: gradientSlots[i % 2], scratch: Array(gradientSlots[2...]))
                                 : nil
            // The two slots other than the input's, the second of which becomes the output.
            let free = (0..<3).filter { $0 != current }
            let acts = backward ? nil : free.map { activationSlots[$0] }
            (ch, cw) = b.plan(batch: n, height: ch, width: cw, backward: backward, slots: slots, activations: acts)
            if !backward { current = free[1] }
            sizes.append((ch, cw))
        }
        blockMapSizes = sizes
        pool.plan(channels: featureDim, batch: n, spatial: ch * cw, backward: backward)
        fc?.plan(batch: n, backward: backward)
        fc0?.plan(batch: n, backward: backward)
        headReLU.plan(count: n * featureDim, backward: backward)
        fc2?.plan(batch: n, backward: backward)
        projector?.plan(batch: n, backward: backward)
        predictor?.plan(batch: n, backward: backward)
        batch = n; height = h; width = w; plannedBackward = backward; mapSize = (ch, cw)
    }

    /// Pooled backbone features [N, d] of the last forward.
    public var features: UnsafeMutablePointer<Float> { pool.y.ptr }
    /// The backbone's last map [d, N, h, w] (channel-major) of the last forward, before pooling.
    public var lastMap: UnsafePointer<Float> { UnsafePointer(blocks.last?.y.ptr ?? bn1.y.ptr) }
    /// Height and width of `lastMap` (7x7 for ResNet-20 on 28-px images).
    public var lastMapSize: (h: Int, w: Int) { mapSize }
    /// Index into `blocks` of the last block of stage `s` (0-based).
    public func lastBlock(ofStage s: Int) -> Int {
        architecture.stages.prefix(s + 1).reduce(0) { $0 + $1.blocks } - 1
    }
    /// The `mlp` head's hidden activation ReLU(fc.0(features)) [N, d] of the last forward with
    /// the head (nil for the other heads).
    public var headHidden: UnsafeMutablePointer<Float>? { fc0 == nil ? nil : headReLU.y.ptr }
    /// Head output [N, dim] of the last forward (not normalised): the predictor's when there is one.
    public var projection: UnsafeMutablePointer<Float> {
        predictor?.y ?? projector?.y ?? (fc ?? fc2!).y.ptr
    }

    /// images: [N, C, H, W] -> features [N, d], projection [N, dim]; with `throughBlock: i`, only
    /// the stem and blocks 0...i, whose last output `blocks[i].y` [width, N, h, w] is then
    /// intact (`blockMapSizes[i]`): no pooling, no head. `afterBlock(i)` runs right after block i,
    /// while its output `blocks[i].y` is intact (a forward-only plan reuses it for later blocks).
    public func forward(_ images: UnsafePointer<Float>, training: Bool, withHead: Bool = true, throughBlock: Int? = nil,
                        afterBlock: ((Int) -> Void)? = nil) {
        let hw = height * width
        nchwToCnhw(images, n: batch, c: inChannels, hw: hw, input.ptr)
        conv1.forward(input.ptr)
        bn1.forward(conv1.y.ptr, training: training)
        var x = UnsafePointer(bn1.y.ptr)
        for (i, b) in blocks.enumerated() {
            b.forward(x, training: training)
            x = UnsafePointer(b.y.ptr)
            afterBlock?(i)
            if i == throughBlock { return }
        }
        pool.forward(x)
        guard withHead else { return }
        if let projector { projector.forward(pool.y.ptr, training: training) }
        else if let fc { fc.forward(pool.y.ptr) } else {
            fc0!.forward(pool.y.ptr)
            headReLU.forward(fc0!.y.ptr)
            fc2!.forward(headReLU.y.ptr)
        }
        if let predictor { predictor.forward(projector?.y ?? (fc ?? fc2!).y.ptr, training: training) }
    }

    /// dProjection: [N, dim] -> gradients of every parameter in `params.grads`.
    /// `onGradientsReady(offset)` is called whenever the gradients from `offset` to the end are
    /// final (after the head, after each residual block in reverse order, after the stem),
    /// so a distributed trainer can start allreducing them while the rest of the backward runs.
    public func backward(_ dProjection: UnsafePointer<Float>, onGradientsReady: ((Int) -> Void)? = nil) {
        precondition(plannedBackward, "backward on an encoder planned without backward")
        let dFeatures: UnsafeMutablePointer<Float>
        var dProjection = dProjection
        if let predictor {
            predictor.backward(dProjection)
            dProjection = UnsafePointer(predictor.dX)
        }
        if let projector {
            projector.backward(dProjection); dFeatures = projector.dX
        } else if let fc {
            fc.backward(dProjection); dFeatures = fc.dX.ptr
        } else {
            fc2!.backward(dProjection)
            headReLU.backward(fc2!.dX.ptr)
            fc0!.backward(headReLU.dX.ptr)
            dFeatures = fc0!.dX.ptr
        }
        // The callback's argument: gradients from this offset to the end of `params` are final.
        onGradientsReady?(headOffset)
        pool.backward(dFeatures)
        var dY = pool.dX.ptr
        for (i, b) in blocks.enumerated().reversed() {
            b.backward(dY)
            dY = b.dX.ptr
            onGradientsReady?(blockOffsets[i])
        }
        bn1.backward(dY)
        conv1.backward(bn1.dX.ptr)
        onGradientsReady?(0)
    }

    /// Offset in `params` where the head's parameters start.
    public var headOffset: Int { projector?.firstOffset ?? (fc ?? fc0!).weightOffset }
    /// Parameters before the predictor's (all of them without a predictor).
    public var encoderParameterCount: Int { predictor?.firstOffset ?? params.count }
    /// Offset in `params` where each block's parameters start.
    public var blockOffsets: [Int] { blocks.map { $0.conv1.weightOffset } }
}
