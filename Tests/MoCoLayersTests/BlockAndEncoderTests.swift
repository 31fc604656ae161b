import XCTest
import MoCoTensor
@testable import MoCoLayers

final class BlockAndEncoderTests: XCTestCase {
    /// A whole residual block with a projection shortcut: dX and every parameter gradient.
    func testBasicBlockWithProjectionShortcut() {
        var rng = Xoshiro(seed: 31)
        let p = ParameterStore(), b = ParameterStore(withGradients: false), ws = Workspace()
        let block = BasicBlock("blk", params: p, buffers: b, workspace: ws, inChannels: 3, outChannels: 4, stride: 2)
        p.finalize(); b.finalize()
        for bn in block.batchNorms { bn.resetParameters() }
        for conv in block.convs {
            for i in 0..<(conv.outChannels * conv.inChannels * conv.kernel * conv.kernel) { p.values.ptr[conv.weightOffset + i] = rng.normal() * 0.4 }
        }
        for bn in block.batchNorms { for i in 0..<bn.channels { p.values.ptr[bn.biasOffset + i] = rng.normal() * 0.2 } }
        XCTAssertNotNil(block.downsampleConv)
        let n = 4, h = 6, w = 6
        let (ho, wo) = block.plan(batch: n, height: h, width: w, backward: true)
        let x = randomBuffer(3 * n * h * w, &rng), r = randomBuffer(4 * n * ho * wo, &rng)
        block.forward(x.ptr, training: true)
        let dY = FloatBuffer(r.array)
        block.backward(dY.ptr)
        let loss = { () -> Double in block.forward(x.ptr, training: true); return dot(r, block.y.ptr) }
        var gc = GradCheck(); gc.h = 1e-3; gc.samples = 30
        gc.check("block dX", p: x.ptr, count: x.count, analytic: block.dX.array, loss: loss, rng: &rng)
        for e in p.entries {
            gc.check("block \(e.name)", p: p.values.ptr + e.offset, count: e.count, analytic: p.gradArray(e.name), loss: loss, rng: &rng)
        }
    }

    /// Identity shortcut block.
    func testBasicBlockIdentityShortcut() {
        var rng = Xoshiro(seed: 32)
        let p = ParameterStore(), b = ParameterStore(withGradients: false), ws = Workspace()
        let block = BasicBlock("blk", params: p, buffers: b, workspace: ws, inChannels: 3, outChannels: 3, stride: 1)
        p.finalize(); b.finalize()
        for bn in block.batchNorms { bn.resetParameters() }
        for conv in block.convs { for i in 0..<(conv.outChannels * conv.inChannels * 9) { p.values.ptr[conv.weightOffset + i] = rng.normal() * 0.4 } }
        XCTAssertNil(block.downsampleConv)
        block.plan(batch: 3, height: 4, width: 4, backward: true)
        let x = randomBuffer(3 * 3 * 16, &rng), r = randomBuffer(3 * 3 * 16, &rng)
        block.forward(x.ptr, training: true)
        let dY = FloatBuffer(r.array); block.backward(dY.ptr)
        var gc = GradCheck(); gc.h = 1e-3; gc.samples = 30
        gc.check("identity block dX", p: x.ptr, count: x.count, analytic: block.dX.array,
                 loss: { block.forward(x.ptr, training: true); return dot(r, block.y.ptr) }, rng: &rng)
    }

    /// A block planned with shared slots (bn1's output in scratch, recomputed in the backward)
    /// gives bit for bit the output and gradients of one that keeps every buffer, even when
    /// the scratch is overwritten between forward and backward (as the next block does).
    /// Small channel counts run im2col, 16 channels the Winograd convolutions.
    func testSharedSlotsRecomputeMatchesOwnBuffers() {
        for (stride, cin) in [(1, 3), (2, 3), (1, 16), (2, 16)] {
            var rng = Xoshiro(seed: 33 + UInt64(stride))
            let cout = stride == 1 ? cin : cin + 1, n = 4, h = 6, w = 6
            func make() -> (BasicBlock, ParameterStore) {
                let p = ParameterStore(), b = ParameterStore(withGradients: false)
                let block = BasicBlock("blk", params: p, buffers: b, workspace: Workspace(), inChannels: cin,
                                       outChannels: cout, stride: stride)
                p.finalize(); b.finalize()
                for bn in block.batchNorms { bn.resetParameters() }
                return (block, p)
            }
            let (own, p1) = make(), (shared, p2) = make()
            for i in 0..<p1.count { p1.values.ptr[i] += rng.normal() * 0.3 }
            p2.values.copy(from: p1.values)
            let (ho, wo) = own.plan(batch: n, height: h, width: w, backward: true)
            let big = cin * n * h * w
            let slots = BasicBlock.GradientSlots(output: FloatBuffer(count: big),
                                                 scratch: (0..<3).map { _ in FloatBuffer(count: big) })
            shared.plan(batch: n, height: h, width: w, backward: true, slots: slots)
            let x = randomBuffer(cin * n * h * w, &rng), r = randomBuffer(cout * n * ho * wo, &rng)
            own.forward(x.ptr, training: true)
            shared.forward(x.ptr, training: true)
            XCTAssertEqual(shared.y.array.map(\.bitPattern), own.y.array.map(\.bitPattern))
            for s in slots.scratch { s.ptr.update(repeating: .nan, count: s.count) }
            let dY1 = FloatBuffer(r.array), dY2 = FloatBuffer(r.array)
            own.backward(dY1.ptr)
            shared.backward(dY2.ptr)
            XCTAssertEqual(Array(shared.dX.array.prefix(x.count)).map(\.bitPattern), own.dX.array.map(\.bitPattern), "stride \(stride) dX")
            XCTAssertEqual(p2.grads.array.map(\.bitPattern), p1.grads.array.map(\.bitPattern), "stride \(stride) parameter gradients")
        }
    }

    func testEncoderNamesMatchTorchvision() {
        let e = Encoder(architecture: .resnet20, head: .mlp, inChannels: 1)
        let names = Set(e.floatState.map(\.name) + e.counterNames)
        for n in ["conv1.weight", "bn1.running_mean", "bn1.num_batches_tracked", "layer1.0.conv1.weight",
                  "layer2.0.downsample.0.weight", "layer2.0.downsample.1.bias", "layer3.2.bn2.running_var",
                  "fc.0.weight", "fc.2.bias"] {
            XCTAssertTrue(names.contains(n), n)
        }
        XCTAssertFalse(names.contains("layer1.0.downsample.0.weight"))
        XCTAssertEqual(e.params.entry("layer3.0.conv1.weight")?.shape, [64, 32, 3, 3])
        // ResNet-20 (1 input channel, projection shortcuts): stem 144 + 32; layer1 3·(2·2304 + 64);
        // layer2 (4608 + 9216 + 128 + 512 + 64) + 2·(2·9216 + 128); layer3 (18432 + 36864 + 256 +
        // 2048 + 128) + 2·(2·36864 + 256) = 271,536; MLP head 64·64 + 64 + 128·64 + 128 = 12,480.
        XCTAssertEqual(e.params.entries.reduce(0) { $0 + $1.count }, 271_536 + 12_480)
        let r18 = Encoder(architecture: .resnet18, head: .linear, inChannels: 3, trainable: false)
        XCTAssertEqual(r18.params.entry("layer4.1.conv2.weight")?.shape, [512, 512, 3, 3])
        XCTAssertEqual(r18.params.entry("fc.weight")?.shape, [128, 512])
        // torchvision resnet18 without fc: 11,176,512 parameters (its 3x3 CIFAR stem instead of
        // the 7x7 one: 11,176,512 - 64*3*49 + 64*3*9).
        XCTAssertEqual(r18.params.entries.filter { !$0.name.hasPrefix("fc") }.reduce(0) { $0 + $1.count },
                       11_176_512 - 64 * 3 * 49 + 64 * 3 * 9)
    }

    /// The widened ResNet-20s: torchvision names, widths, and the parameter counts of
    /// scripts/pytorch_moco_step.py's `make_encoder("resnet20-x2" / "resnet20-x4")` (counted by
    /// PyTorch: backbone 1,082,720 and 4,324,032; MLP head 33,024 and 98,688).
    func testWideResNet20() {
        for (arch, k, backbone, head) in [(Architecture.resnet20x2, 2, 1_082_720, 33_024), (.resnet20x4, 4, 4_324_032, 98_688)] {
            let e = Encoder(architecture: arch, head: .mlp, inChannels: 1, trainable: false)
            XCTAssertEqual(e.featureDim, 64 * k)
            XCTAssertEqual(e.params.entry("conv1.weight")?.shape, [16 * k, 1, 3, 3])
            XCTAssertEqual(e.params.entry("layer3.2.conv2.weight")?.shape, [64 * k, 64 * k, 3, 3])
            XCTAssertEqual(e.params.entry("fc.2.weight")?.shape, [128, 64 * k])
            XCTAssertNil(e.params.entry("layer4.0.conv1.weight"))
            XCTAssertEqual(e.params.entries.filter { !$0.name.hasPrefix("fc") }.reduce(0) { $0 + $1.count }, backbone)
            XCTAssertEqual(e.params.entries.filter { $0.name.hasPrefix("fc") }.reduce(0) { $0 + $1.count }, head)
        }
        // A bare weights file names its architecture by its stem's width and a fourth stage.
        XCTAssertEqual(Architecture.infer(stemWidth: 16, hasLayer4: false), .resnet20)
        XCTAssertEqual(Architecture.infer(stemWidth: 32, hasLayer4: false), .resnet20x2)
        XCTAssertEqual(Architecture.infer(stemWidth: 64, hasLayer4: false), .resnet20x4)
        XCTAssertEqual(Architecture.infer(stemWidth: 64, hasLayer4: true), .resnet18)
        XCTAssertNil(Architecture.infer(stemWidth: 24, hasLayer4: false))
        XCTAssertNil(Architecture.infer(stemWidth: 16, hasLayer4: true))
    }

    /// Gradients of a whole (small) encoder against finite differences, for a sample of tensors.
    func testEncoderGradient() {
        var rng = Xoshiro(seed: 33)
        let e = Encoder(architecture: .resnet20, head: .mlp, inChannels: 1, dim: 8)
        // The step h and tolerance were set at torchvision's weight scale (a float32 forward; at
        // the 2.4x smaller 3x3 weights of `.pytorch` h = 1e-3 crosses ReLU kinks in conv1).
        e.initialize(seed: 1, scheme: .torchvision)
        e.plan(batch: 4, height: 8, width: 8, backward: true)
        let x = randomBuffer(4 * 64, &rng), r = randomBuffer(4 * 8, &rng)
        e.forward(x.ptr, training: true)
        e.backward(r.ptr)
        let loss = { () -> Double in e.forward(x.ptr, training: true); return dot(r, e.projection) }
        var gc = GradCheck(); gc.h = 1e-3; gc.samples = 6; gc.relTol = 5e-2
        for name in ["conv1.weight", "bn1.weight", "layer1.0.conv2.weight", "layer2.0.downsample.0.weight",
                     "layer3.2.bn2.bias", "fc.0.weight", "fc.2.bias"] {
            let en = e.params.entry(name)!
            gc.check("encoder \(name)", p: e.params.values.ptr + en.offset, count: en.count,
                     analytic: e.params.gradArray(name), loss: loss, rng: &rng)
        }
    }
}
