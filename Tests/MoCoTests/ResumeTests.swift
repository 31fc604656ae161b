import XCTest
import MoCoComm
import SafeTensors
@testable import MoCo

final class ResumeTests: XCTestCase {
    func tinyConfig(out: String) throws -> TrainConfig {
        var c = try TrainConfig.preset("moco-v2")
        c.data = .synthetic; c.trainSubset = 48; c.batchSize = 16; c.epochs = 2
        c.moco.queueSize = 40; c.moco.bnSplits = 2; c.knnEvery = 0; c.logEvery = 100; c.saveEvery = 1; c.out = out
        return c
    }

    func tensors(_ path: String) throws -> [String: [UInt8]] {
        let f = try SafeTensorsFile(path: path)
        var out: [String: [UInt8]] = [:]
        for n in f.names { out[n] = try f.withRawBytes(n) { Array($0) } }
        return out
    }

    /// Training 2 epochs straight and training 1 epoch, then resuming for the second, must give
    /// bitwise identical encoders, queue and optimizer state.
    func testResumeAfterEpochOneIsBitwiseIdentical() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("moco-resume-\(getpid())")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let full = tmp.appendingPathComponent("full").path, split = tmp.appendingPathComponent("split").path
        let quiet: (String) -> Void = { _ in }
        _ = try Trainer(config: try tinyConfig(out: full), comm: SingleProcessCommunicator(), say: quiet).run()
        let first = try Trainer(config: try tinyConfig(out: split), comm: SingleProcessCommunicator(), say: quiet).run(stopAfter: 1)
        XCTAssertEqual(first.epochsDone, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: split + "/checkpoint_0002.safetensors"))
        let resumed = try Trainer(config: try tinyConfig(out: split), comm: SingleProcessCommunicator(), say: quiet).run(resume: "auto")
        XCTAssertEqual(resumed.epochsDone, 2)
        let a = try tensors(full + "/checkpoint_0002.safetensors"), b = try tensors(split + "/checkpoint_0002.safetensors")
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        XCTAssertTrue(a.keys.contains("encoder_q.layer3.2.conv2.weight") && a.keys.contains("queue"))
        for (name, bytes) in a { XCTAssertEqual(bytes, b[name], "\(name) differs after resume") }
        // And the first epoch really changed the weights (the comparison is not vacuous).
        let e1 = try tensors(split + "/checkpoint_0001.safetensors")
        XCTAssertNotEqual(e1["encoder_q.conv1.weight"], a["encoder_q.conv1.weight"])
    }

    func testMismatchedCheckpointIsRefusedWithReason() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("moco-mismatch-\(getpid())")
        defer { try? FileManager.default.removeItem(at: tmp) }
        var c = try tinyConfig(out: tmp.path)
        c.epochs = 1
        _ = try Trainer(config: c, comm: SingleProcessCommunicator(), say: { _ in }).run()
        c.epochs = 2
        c.moco.queueSize = 32
        XCTAssertThrowsError(try Trainer(config: c, comm: SingleProcessCommunicator(), say: { _ in }).run(resume: "auto")) { error in
            XCTAssertTrue("\(error)".contains("queue-size"), "\(error)")
        }
    }
}
