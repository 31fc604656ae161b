import Foundation
import MoCoTensor

/// How an encoder's convolution weights start (BatchNorm and the linear head start the same
/// under both).
public enum InitScheme: String, CaseIterable, Codable, Sendable {
    /// torchvision's ResNet: Kaiming-normal with fan_out, std = sqrt(2 / (K·k·k)) (He et al. 2015).
    case torchvision
    /// PyTorch's `nn.Conv2d` default, `kaiming_uniform_(a=√5)`: uniform in ±1/sqrt(C·k·k) (fan_in),
    /// what a ResNet written on plain `nn.Conv2d` without an init loop keeps. For ResNet-20's 3x3
    /// layers this is a ~2.4x smaller std than `torchvision`'s.
    case pytorch
}

extension InitScheme {
    /// The default of every preset, `moco init` and `--random-init`: PyTorch's `nn.Conv2d` default,
    /// chosen on MoCo v2 ResNet-20 Fashion-MNIST runs with 3 seeds at epochs 1-5 and 2 seeds after
    /// 30 epochs, kNN and linear probe (docs/results.md, "Initialisation and parity with PyTorch").
    public static let `default`: InitScheme = .pytorch
    /// The scheme of a configuration written before it recorded one (`moco.initialization`):
    /// every run then started from torchvision's.
    public static let unrecorded: InitScheme = .torchvision
}

extension Encoder {
    /// A seeded initialisation: convolutions by `scheme`; BatchNorm weight 1, bias 0; Linear as
    /// PyTorch's default (`kaiming_uniform_(a=√5)`, i.e. weight and bias uniform in
    /// ±1/sqrt(fan_in)).
    public func initialize(seed: UInt64, scheme: InitScheme = .default) {
        var rng = Xoshiro(seed: seed, stream: [0x494E_4954])
        for conv in convs {
            let w = params.value(conv.weightOffset)
            let n = conv.outChannels * conv.inChannels * conv.kernel * conv.kernel
            switch scheme {
            case .torchvision:
                let std = (2.0 / Float(conv.outChannels * conv.kernel * conv.kernel)).squareRoot()
                for i in 0..<n { w[i] = rng.normal() * std }
            case .pytorch:
                let bound = 1 / Float(conv.inChannels * conv.kernel * conv.kernel).squareRoot()
                for i in 0..<n { w[i] = rng.uniform(-bound, bound) }
            }
        }
        for bn in batchNorms { bn.resetParameters() }
        for bn in headBatchNorms { bn.resetParameters() }
        for lin in linears {
            let bound = 1 / Float(lin.inFeatures).squareRoot()
            let w = params.value(lin.weightOffset)
            for i in 0..<(lin.inFeatures * lin.outFeatures) { w[i] = rng.uniform(-bound, bound) }
            if lin.hasBias {
                let b = params.value(lin.biasOffset)
                for i in 0..<lin.outFeatures { b[i] = rng.uniform(-bound, bound) }
            }
        }
    }

    /// Copies parameters, running statistics and BN counters from `other` (same architecture).
    /// With a predictor on one side only (MoCo v3's query and key encoders), the common prefix:
    /// everything but the predictor.
    public func copyState(from other: Encoder) {
        let p = min(params.count, other.params.count), b = min(buffers.count, other.buffers.count)
        precondition(encoderParameterCount == other.encoderParameterCount && p == encoderParameterCount,
                     "copyState: encoders differ")
        params.values.ptr.update(from: other.params.values.ptr, count: p)
        buffers.values.ptr.update(from: other.buffers.values.ptr, count: b)
        for (a, b) in zip(batchNorms, other.batchNorms) { a.numBatchesTracked = b.numBatchesTracked }
        for (a, b) in zip(headBatchNorms, other.headBatchNorms) { a.numBatchesTracked = b.numBatchesTracked }
    }

    /// One float tensor of the state dict.
    public struct StateTensor {
        public let name: String
        public let shape: [Int]
        public let pointer: UnsafeMutablePointer<Float>
    }

    /// Every float tensor of the torchvision-style state dict (parameters, then running stats).
    public var floatState: [StateTensor] {
        params.entries.map { StateTensor(name: $0.name, shape: $0.shape, pointer: params.value($0.offset)) }
            + buffers.entries.map { StateTensor(name: $0.name, shape: $0.shape, pointer: buffers.value($0.offset)) }
    }

    /// `<bn>.num_batches_tracked` counters (I64 scalars in the state dict).
    public var counterNames: [String] {
        batchNorms.map { "\($0.name).num_batches_tracked" } + headBatchNorms.map { "\($0.name).num_batches_tracked" }
    }
    public var counters: [Int64] {
        get { batchNorms.map(\.numBatchesTracked) + headBatchNorms.map(\.numBatchesTracked) }
        set {
            for (bn, v) in zip(batchNorms, newValue) { bn.numBatchesTracked = v }
            for (bn, v) in zip(headBatchNorms, newValue.dropFirst(batchNorms.count)) { bn.numBatchesTracked = v }
        }
    }
}
