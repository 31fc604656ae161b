import Foundation
import MoCoTensor
import MoCoLayers
import SafeTensors

/// A training checkpoint, `OUT/checkpoint_EEEE.safetensors`:
/// - `encoder_q.<torchvision name>`: the trained encoder with its BN buffers;
/// - `optimizer.momentum_buffer.<name>`: SGD's momentum for each of its parameters;
/// - the method's own state (`ContrastiveMethod.addState`): moco: `encoder_k.<...>`, `queue`
///   [dim, K], `queue_ptr` (I64 [1]); memory-bank: `memory_bank` [N, dim]; with NCE: `nce_z` [1]
///   once Z is estimated; end-to-end: nothing more;
/// - metadata: `epoch` (completed), `step` (global steps done), `config` (JSON), `world_size`
///   (informational: checkpoints do not depend on it), `sgd_has_velocity`.
/// All randomness in a run is keyed by (seed, epoch, step, sample), so no generator state
/// needs saving: resuming at an epoch boundary replays exactly what an uninterrupted run does.
public enum Checkpoint {
    public static let format = "swift-moco checkpoint v1"

    public static func fileName(epoch: Int) -> String { String(format: "checkpoint_%04d.safetensors", epoch) }

    public static func serialize(model: ContrastiveMethod, config: TrainConfig, epoch: Int, step: Int) -> SafeTensorsWriter {
        var w = SafeTensorsWriter()
        EncoderState.add(model.query, prefix: "encoder_q.", to: &w)
        model.addState(to: &w)
        let v = model.optimizer.velocity
        for e in model.query.params.entries {
            w.add("optimizer.momentum_buffer.\(e.name)", shape: e.shape,
                  floats: UnsafeBufferPointer(start: v.ptr + e.offset, count: e.count))
        }
        w.metadata = [
            "format": format, "epoch": String(epoch), "step": String(step),
            "config": config.jsonString(pretty: false), "world_size": String(model.comm.size),
            "sgd_has_velocity": model.optimizer.hasVelocity ? "1" : "0",
        ]
        return w
    }

    public struct Info {
        public let epoch: Int, step: Int
        public let config: TrainConfig
    }

    /// Reads the metadata and validates it.
    public static func info(_ f: SafeTensorsFile) throws -> Info {
        guard f.metadata["format"] == format else {
            throw SafeTensorsError(path: f.path, message: "not a swift-moco checkpoint (metadata 'format' is \(f.metadata["format"].map { "'\($0)'" } ?? "missing"))")
        }
        guard let e = f.metadata["epoch"].flatMap(Int.init), e >= 0, let s = f.metadata["step"].flatMap(Int.init), s >= 0 else {
            throw SafeTensorsError(path: f.path, message: "checkpoint metadata 'epoch' or 'step' missing or invalid")
        }
        guard let cj = f.metadata["config"] else { throw SafeTensorsError(path: f.path, message: "checkpoint metadata has no 'config'") }
        return Info(epoch: e, step: s, config: try TrainConfig.from(json: cj))
    }

    /// Restores everything into `model` after validating the whole file against it.
    public static func restore(_ f: SafeTensorsFile, into model: ContrastiveMethod) throws {
        let q = model.query
        try EncoderState.validate(q, in: f, prefix: "encoder_q.")
        for e in q.params.entries { try f.expect("optimizer.momentum_buffer.\(e.name)", dtype: .f32, shape: e.shape) }
        try model.validateState(f)
        try EncoderState.load(q, from: f, prefix: "encoder_q.")
        try model.loadState(f)
        for e in q.params.entries {
            try f.floats("optimizer.momentum_buffer.\(e.name)", into: model.optimizer.velocity.ptr + e.offset, count: e.count)
        }
        model.optimizer.hasVelocity = f.metadata["sgd_has_velocity"] == "1"
    }

    /// The newest `checkpoint_EEEE.safetensors` in `directory`, if any.
    public static func latest(in directory: String) -> String? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return nil }
        let ckpts = names.filter { $0.hasPrefix("checkpoint_") && $0.hasSuffix(".safetensors") }.sorted()
        return ckpts.last.map { directory + "/" + $0 }
    }
}
