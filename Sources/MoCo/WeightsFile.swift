import MoCoTensor
import MoCoLayers
import SafeTensors

/// Loading an encoder from a weights file: a bare encoder (torchvision names) or a MoCo
/// checkpoint (names under `encoder_q.`; its configuration gives the architecture and head).
public enum WeightsFile {
    /// Largest head output a configuration may state without the head's weight in the file.
    public static let maxHeadDim = 1 << 16

    public struct Loaded {
        public let encoder: Encoder
        public let prefix: String
        public let config: TrainConfig?
    }

    /// - Parameters: architecture/head: required for a bare encoder unless `conv1.weight` and
    ///   the head's shapes say enough; a checkpoint's configuration wins when they are absent.
    public static func load(_ path: String, architecture: Architecture?, head: HeadKind?, backboneOnly: Bool = false,
                            engine: EngineConfig = EngineConfig()) throws -> Loaded {
        let f = try SafeTensorsFile(path: path)
        let prefix = f.has("encoder_q.conv1.weight") ? "encoder_q." : ""
        let config = prefix.isEmpty ? nil : try? Checkpoint.info(f).config
        guard f.has(prefix + "conv1.weight") else {
            throw SafeTensorsError(path: path, message: "no 'conv1.weight' or 'encoder_q.conv1.weight': not an encoder or MoCo checkpoint")
        }
        let conv1 = try f.shape(prefix + "conv1.weight")
        guard conv1.count == 4 else { throw SafeTensorsError(path: path, message: "tensor '\(prefix)conv1.weight': expected 4 dimensions, got \(conv1)") }
        guard let arch = architecture ?? config?.moco.architecture
                ?? Architecture.infer(stemWidth: conv1[0], hasLayer4: f.has(prefix + "layer4.0.conv1.weight")) else {
            throw SafeTensorsError(path: path, message: "tensor '\(prefix)conv1.weight' has \(conv1[0]) output channels: no encoder "
                + "has that stem (\(Architecture.allCases.map { "\($0.rawValue) \($0.stemWidth)" }.joined(separator: ", ")))")
        }
        let hd = head ?? config?.moco.head ?? (f.has(prefix + "fc.0.weight") ? .mlp : .linear)
        // The head's output size comes from its weight when the file has one (its bytes bound it);
        // a configuration's `dim` alone is range-checked, since it would size an allocation.
        var dim = config?.moco.dim ?? 128
        let last = hd == .mlp ? "fc.2.weight" : "fc.weight"
        if f.has(prefix + last), let s = try? f.shape(prefix + last), s.count == 2 {
            dim = s[0]
        } else if !(1...maxHeadDim).contains(dim) {
            throw SafeTensorsError(path: path, message: "checkpoint configuration: dim \(dim) is outside 1...\(maxHeadDim)")
        }
        // The mlp-bn projector's hidden width, from its first weight [hidden, d] as `dim` above.
        var hidden: Int? = nil
        if hd == .mlpBN, f.has(prefix + "fc.0.weight"), let s = try? f.shape(prefix + "fc.0.weight"), s.count == 2 {
            hidden = s[0]
        }
        let e = Encoder(architecture: arch, head: hd, inChannels: conv1[1], dim: dim, trainable: false, engine: engine,
                        hidden: hidden)
        try EncoderState.load(e, from: f, prefix: prefix, backboneOnly: backboneOnly, skippingPredictor: true)
        return Loaded(encoder: e, prefix: prefix, config: config)
    }
}
