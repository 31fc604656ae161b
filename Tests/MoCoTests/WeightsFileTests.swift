import XCTest
import Foundation
import MoCoComm
import SafeTensors
import MoCoLayers
@testable import MoCo

/// `WeightsFile.load` on checkpoints whose configuration was edited: the head's output size is
/// taken from its weight when present, and a stated `dim` alone is range-checked before it sizes
/// an allocation (found while fuzzing the checkpoint metadata, docs/fuzzing.md).
final class WeightsFileTests: XCTestCase {
    func tinyConfig(out: String) throws -> TrainConfig {
        var c = try TrainConfig.preset("moco-v2")
        c.data = .synthetic; c.trainSubset = 32; c.batchSize = 16; c.epochs = 1
        c.moco.queueSize = 32; c.moco.bnSplits = 2; c.knnEvery = 0; c.logEvery = 100; c.saveEvery = 1; c.out = out
        return c
    }

    /// Rewrites `src` to `dst` without the tensors under `drop` and with `edit` applied to the
    /// configuration's JSON.
    func rewrite(_ src: String, _ dst: String, drop: String, edit: (inout [String: Any]) -> Void) throws {
        let f = try SafeTensorsFile(path: src)
        var w = SafeTensorsWriter()
        for n in f.names where !n.hasPrefix(drop) {
            let i = try f.info(n)
            if i.dtype == .i64 { w.add(n, shape: i.shape, int64s: try f.int64s(n)) }
            else { w.add(n, shape: i.shape, floats: try f.floats(n)) }
        }
        var meta = f.metadata
        var json = try JSONSerialization.jsonObject(with: Data(meta["config"]!.utf8)) as! [String: Any]
        edit(&json)
        meta["config"] = String(decoding: try JSONSerialization.data(withJSONObject: json), as: UTF8.self)
        meta.removeValue(forKey: "tensors_crc32")
        w.metadata = meta
        try w.write(to: dst)
    }

    func testConfigurationDimIsRangeCheckedWithoutTheHead() throws {
        let dir = NSTemporaryDirectory() + "weightsfile-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try Trainer(config: try tinyConfig(out: dir), comm: SingleProcessCommunicator(), say: { _ in }).run()
        let ckpt = dir + "/checkpoint_0001.safetensors"

        // The head present: its weight gives dim even for a backbone-only load.
        let huge = dir + "/huge-dim.safetensors"
        try rewrite(ckpt, huge, drop: "encoder_k.") { json in
            var moco = json["moco"] as! [String: Any]; moco["dim"] = 1 << 40; json["moco"] = moco
        }
        XCTAssertEqual(try WeightsFile.load(huge, architecture: nil, head: nil, backboneOnly: true).encoder.dim, 128)

        // Without the head, a dim beyond the bound is refused by name rather than allocated.
        let headless = dir + "/headless.safetensors"
        try rewrite(huge, headless, drop: "encoder_q.fc.") { _ in }
        XCTAssertThrowsError(try WeightsFile.load(headless, architecture: nil, head: nil, backboneOnly: true)) { error in
            XCTAssertTrue("\(error)".contains("dim 1099511627776 is outside 1...65536"), "\(error)")
        }
    }

    /// A bare encoder file names its architecture by its stem: the widened ResNet-20s load
    /// without --arch, and a stem no architecture has is refused by name.
    func testBareFileArchitectureFromItsStem() throws {
        let dir = NSTemporaryDirectory() + "weightsfile-arch-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for arch in [Architecture.resnet20, .resnet20x2, .resnet20x4] {
            let e = Encoder(architecture: arch, head: .mlp, inChannels: 1, trainable: false)
            e.initialize(seed: 1)
            var w = SafeTensorsWriter()
            EncoderState.add(e, to: &w)
            let path = dir + "/\(arch.rawValue).safetensors"
            try w.write(to: path)
            let l = try WeightsFile.load(path, architecture: nil, head: nil)
            XCTAssertEqual(l.encoder.architecture, arch)
            XCTAssertEqual(Array(l.encoder.params.values.array), Array(e.params.values.array))
        }
        var w = SafeTensorsWriter()
        w.add("conv1.weight", shape: [24, 1, 3, 3], floats: [Float](repeating: 0, count: 24 * 9))
        try w.write(to: dir + "/odd.safetensors")
        XCTAssertThrowsError(try WeightsFile.load(dir + "/odd.safetensors", architecture: nil, head: nil)) { error in
            XCTAssertTrue("\(error)".contains("has 24 output channels: no encoder has that stem"), "\(error)")
        }
    }
}
