import Foundation
import CZlib
import MoCoTensor
import MoCoLayers
import SafeTensors

/// A training checkpoint, `OUT/checkpoint_EEEE.safetensors` after E completed epochs, or
/// `OUT/checkpoint_EEEE_SSSSSS.safetensors` when a run was stopped (preempted) S steps into
/// epoch E + 1:
/// - `encoder_q.<torchvision name>`: the trained encoder with its BN buffers;
/// - `optimizer.momentum_buffer.<name>`: SGD's momentum for each of its parameters;
/// - the method's own state (`ContrastiveMethod.addState`): moco: `encoder_k.<...>`, `queue`
///   [dim, K], `queue_ptr` (I64 [1]); memory-bank: `memory_bank` [N, dim]; with NCE: `nce_z` [1]
///   once Z is estimated; end-to-end: nothing more;
/// - metadata: `epoch` (completed), `epoch_step` (steps done of the next epoch, 0 at a
///   boundary), `step` (global steps done), `config` (JSON), `world_size` (informational:
///   checkpoints do not depend on it), `sgd_has_velocity`, and `tensors_crc32`: the CRC-32
///   (ISO 3309, zlib's `crc32`) of the data section, i.e. every tensor byte, as 8 hex digits.
/// All randomness in a run is keyed by (seed, epoch, step, sample), so no generator state
/// needs saving: resuming at a saved position replays exactly what an uninterrupted run does.
public enum Checkpoint {
    public static let format = "swift-moco checkpoint v1"

    /// Where in a run a checkpoint was taken: `epoch` completed epochs plus `stepInEpoch` steps
    /// of the next one. Ordered by time.
    public struct Position: Comparable, Sendable, CustomStringConvertible {
        public var epoch: Int, stepInEpoch: Int
        public init(epoch: Int, stepInEpoch: Int = 0) { self.epoch = epoch; self.stepInEpoch = stepInEpoch }
        public static func < (a: Position, b: Position) -> Bool { (a.epoch, a.stepInEpoch) < (b.epoch, b.stepInEpoch) }
        public var description: String {
            stepInEpoch == 0 ? "epoch \(epoch)" : "epoch \(epoch) + \(stepInEpoch) steps"
        }
    }

    public static func fileName(_ p: Position) -> String {
        p.stepInEpoch == 0 ? String(format: "checkpoint_%04d.safetensors", p.epoch)
            : String(format: "checkpoint_%04d_%06d.safetensors", p.epoch, p.stepInEpoch)
    }

    public static func fileName(epoch: Int) -> String { fileName(Position(epoch: epoch)) }

    /// The position a checkpoint file name stands for, or nil for any other name (temporary
    /// files of interrupted writes, `*.safetensors.tmp.<pid>`, included).
    public static func position(ofFileName name: String) -> Position? {
        guard name.hasPrefix("checkpoint_"), name.hasSuffix(".safetensors") else { return nil }
        let core = name.dropFirst("checkpoint_".count).dropLast(".safetensors".count)
        let parts = core.split(separator: "_", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) }),
              let e = Int(parts[0]), let s = parts.count == 2 ? Int(parts[1]) : 0 else { return nil }
        return Position(epoch: e, stepInEpoch: s)
    }

    /// The checkpoints in `directory`, newest first.
    public static func list(in directory: String) -> [(path: String, position: Position)] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        return names.compactMap { n in position(ofFileName: n).map { (directory + "/" + n, $0) } }
            .sorted { $0.position > $1.position }
    }

    /// The newest checkpoint in `directory`, if any.
    public static func latest(in directory: String) -> String? { list(in: directory).first?.path }

    /// Temporary files left by writes that a crash interrupted (`AtomicFile`'s `*.tmp.<pid>`).
    public static func staleTemporaries(in directory: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        return names.filter { $0.hasPrefix("checkpoint_") && $0.contains(".safetensors.tmp.") }.sorted()
            .map { directory + "/" + $0 }
    }

    public static func serialize(model: ContrastiveMethod, config: TrainConfig, position: Position, step: Int) -> SafeTensorsWriter {
        var w = SafeTensorsWriter()
        EncoderState.add(model.query, prefix: "encoder_q.", to: &w)
        model.addState(to: &w)
        let v = model.optimizer.velocity
        for e in model.query.params.entries {
            w.add("optimizer.momentum_buffer.\(e.name)", shape: e.shape,
                  floats: UnsafeBufferPointer(start: v.ptr + e.offset, count: e.count))
        }
        var crc = CRC32()
        w.forEachData { crc.update($0) }
        w.metadata = [
            "format": format, "epoch": String(position.epoch), "epoch_step": String(position.stepInEpoch),
            "step": String(step), "config": config.jsonString(pretty: false), "world_size": String(model.comm.size),
            "sgd_has_velocity": model.optimizer.hasVelocity ? "1" : "0", crcKey: crc.hex,
        ]
        return w
    }

    public struct Info {
        public let position: Position
        public var epoch: Int { position.epoch }
        /// Global steps done.
        public let step: Int
        public let config: TrainConfig
        /// False for a checkpoint written before checksums existed (nothing to verify).
        public let verified: Bool
    }

    static let crcKey = "tensors_crc32"

    /// Reads the metadata, validates it, and verifies the checksum of the tensors.
    public static func info(_ f: SafeTensorsFile) throws -> Info {
        guard f.metadata["format"] == format else {
            throw SafeTensorsError(path: f.path, message: "not a swift-moco checkpoint (metadata 'format' is \(f.metadata["format"].map { "'\($0)'" } ?? "missing"))")
        }
        guard let e = f.metadata["epoch"].flatMap(Int.init), e >= 0, let s = f.metadata["step"].flatMap(Int.init), s >= 0 else {
            throw SafeTensorsError(path: f.path, message: "checkpoint metadata 'epoch' or 'step' missing or invalid")
        }
        let es = f.metadata["epoch_step"].map(Int.init) ?? 0
        guard let es, es >= 0 else { throw SafeTensorsError(path: f.path, message: "checkpoint metadata 'epoch_step' is invalid") }
        guard let cj = f.metadata["config"] else { throw SafeTensorsError(path: f.path, message: "checkpoint metadata has no 'config'") }
        let config: TrainConfig
        do { config = try TrainConfig.from(json: cj) } catch {
            throw SafeTensorsError(path: f.path, message: "checkpoint metadata 'config': \(error)")
        }
        var verified = false
        if let stored = f.metadata[crcKey] {
            var crc = CRC32()
            f.withDataSection { crc.update($0) }
            guard stored == crc.hex else {
                throw SafeTensorsError(path: f.path, message: "the tensors' CRC-32 is \(crc.hex), the checkpoint says \(stored): the file is damaged")
            }
            verified = true
        }
        return Info(position: Position(epoch: e, stepInEpoch: es), step: s, config: config, verified: verified)
    }

    /// Parses and checks a checkpoint's bytes: the safetensors layout, the metadata and the
    /// checksum. Throws what is wrong, naming `path`.
    public static func open(bytes: [UInt8], path: String) throws -> (file: SafeTensorsFile, info: Info) {
        let f = try SafeTensorsFile(bytes: bytes, path: path)
        return (f, try info(f))
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
}

/// CRC-32 (ISO 3309 / ITU-T V.42, the polynomial of zlib, gzip and PNG) over a byte stream, by
/// zlib's `crc32_z`.
struct CRC32 {
    private(set) var value: UInt = crc32_z(0, nil, 0)

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        value = crc32_z(value, base.assumingMemoryBound(to: UInt8.self), bytes.count)
    }

    var hex: String { String(format: "%08x", UInt32(truncatingIfNeeded: value)) }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
