import XCTest
import Foundation
import MoCoComm
import SafeTensors
@testable import MoCo

/// Stop requests (preemption), checksummed checkpoints and the fallback of `--resume auto`, and
/// failing metrics writes, on one process (the multi-rank versions are in DistributedTests).
final class ReliabilityTests: XCTestCase {
    var tmp: URL!
    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("moco-reliability-\(getpid())-\(name.hashValue)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    /// 48 synthetic images, batch 16: 3 steps per epoch, 2 epochs.
    func tinyConfig(_ name: String) throws -> TrainConfig {
        var c = try TrainConfig.preset("moco-v2")
        c.data = .synthetic; c.trainSubset = 48; c.batchSize = 16; c.epochs = 2
        c.moco.queueSize = 40; c.moco.bnSplits = 2; c.knnEvery = 0; c.logEvery = 1; c.saveEvery = 1
        c.engine.threads = 1
        c.out = tmp.appendingPathComponent(name).path
        return c
    }

    func tensors(_ path: String) throws -> [String: [UInt8]] {
        let f = try SafeTensorsFile(path: path)
        var out: [String: [UInt8]] = [:]
        for n in f.names { out[n] = try f.withRawBytes(n) { Array($0) } }
        return out
    }

    func assertSameTensors(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let x = try tensors(a), y = try tensors(b)
        XCTAssertEqual(Set(x.keys), Set(y.keys), file: file, line: line)
        XCTAssertTrue(x.keys.contains("queue") && x.keys.contains("encoder_q.conv1.weight"), file: file, line: line)
        for (n, v) in x { XCTAssertEqual(v, y[n], "\(n) differs", file: file, line: line) }
    }

    /// Asks for a stop (as SIGTERM would) once `after` steps have been asked about.
    final class StopAfter: StopRequests {
        var calls = 0
        let after: Int, signal: Int32
        init(after: Int, signal: Int32 = SIGTERM) { self.after = after; self.signal = signal }
        func pending() -> Int32 { calls += 1; return calls >= after ? signal : 0 }
    }

    func train(_ c: TrainConfig, resume: String? = nil, stops: StopRequests = NoStopRequests(),
               log: @escaping (String) -> Void = { _ in }) throws -> TrainSummary {
        try Trainer(config: c, comm: SingleProcessCommunicator(), stops: stops, say: log).run(resume: resume)
    }

    /// The uninterrupted run every continuation is compared with, trained once per process
    /// (its folder outlives the test that made it; removed in `class tearDown`).
    nonisolated(unsafe) static var referenceRun: String?
    static let referenceDir = FileManager.default.temporaryDirectory.appendingPathComponent("moco-reliability-ref-\(getpid())").path
    override class func tearDown() { try? FileManager.default.removeItem(atPath: referenceDir) }

    /// -> the final checkpoint of the uninterrupted run.
    func reference() throws -> String {
        if let r = Self.referenceRun { return r }
        var c = try tinyConfig("full")
        c.out = Self.referenceDir
        _ = try train(c)
        Self.referenceRun = c.out + "/checkpoint_0002.safetensors"
        return Self.referenceRun!
    }

    /// A copy of the uninterrupted run's folder at `c.out`.
    func copyOfReference(to c: TrainConfig) throws {
        _ = try reference()
        try FileManager.default.copyItem(atPath: Self.referenceDir, toPath: c.out)
    }

    // MARK: - Preemption

    /// A stop request mid-epoch saves `checkpoint_0000_000002` (epoch 0 + 2 steps) and throws
    /// `TrainingPreempted`; `--resume auto` continues mid-epoch to weights bitwise equal to the
    /// uninterrupted run's. A stop at an epoch's last step saves that epoch's checkpoint.
    func testStopRequestSavesMidEpochAndResumesBitwise() throws {
        let full = try reference()
        let c = try tinyConfig("split")
        XCTAssertThrowsError(try train(c, stops: StopAfter(after: 2))) { error in
            guard let p = error as? TrainingPreempted else { return XCTFail("\(error)") }
            XCTAssertEqual(p.signal, SIGTERM)
            XCTAssertEqual(p.position, Checkpoint.Position(epoch: 0, stepInEpoch: 2))
            XCTAssertEqual(p.checkpoint, c.out + "/checkpoint_0000_000002.safetensors")
        }
        let info = try Checkpoint.info(try SafeTensorsFile(path: c.out + "/checkpoint_0000_000002.safetensors"))
        XCTAssertEqual(info.step, 2); XCTAssertTrue(info.verified)
        // Resume, and stop again on the last step of epoch 1 (the 1st step asked about is step 3).
        var lines: [String] = []
        XCTAssertThrowsError(try train(c, resume: "auto", stops: StopAfter(after: 1), log: { lines.append($0) })) { error in
            XCTAssertEqual((error as? TrainingPreempted)?.position, Checkpoint.Position(epoch: 1))
        }
        XCTAssertTrue(lines.contains { $0.contains("resumed from \(c.out)/checkpoint_0000_000002.safetensors at epoch 0 + 2 steps") }, "\(lines)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: c.out + "/checkpoint_0001.safetensors"))
        let done = try train(c, resume: "auto")
        XCTAssertEqual(done.epochsDone, 2); XCTAssertEqual(done.steps, 6)
        try assertSameTensors(full, c.out + "/checkpoint_0002.safetensors")
        // Metrics continue in one file, one train record per step (log-every 1) and no gaps.
        let steps = try String(contentsOfFile: c.out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["type"] as? String == "train" }.compactMap { $0["step"] as? Int }
        XCTAssertEqual(steps, [1, 2, 3, 4, 5, 6])
    }

    // MARK: - Checksums and fallback

    /// Flips one byte of the data section: the tensors' CRC-32 no longer matches.
    func damage(_ path: String) throws {
        var b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var n = 0
        for i in (0..<8).reversed() { n = n << 8 | Int(b[i]) }
        b[8 + n + (b.count - 8 - n) / 2] ^= 0x10
        try Data(b).write(to: URL(fileURLWithPath: path))
    }

    /// A bitwise CRC-32 (reflected polynomial 0xEDB88320), written here independently of zlib.
    func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c >> 1) ^ (0xEDB8_8320 & (0 &- (c & 1))) }
        }
        return ~c
    }

    func testCheckpointCarriesTheCRCOfItsTensors() throws {
        let c = try tinyConfig("crc")
        try copyOfReference(to: c)
        let path = c.out + "/checkpoint_0001.safetensors"
        let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var n = 0
        for i in (0..<8).reversed() { n = n << 8 | Int(b[i]) }
        let f = try SafeTensorsFile(path: path)
        XCTAssertEqual(f.metadata["tensors_crc32"], String(format: "%08x", crc32(b[(8 + n)...])))
        XCTAssertTrue(try Checkpoint.info(f).verified)
        try damage(path)
        XCTAssertThrowsError(try Checkpoint.info(try SafeTensorsFile(path: path))) { e in
            XCTAssertTrue("\(e)".contains("CRC-32") && "\(e)".contains("damaged"), "\(e)")
        }
    }

    /// `--resume auto` skips a damaged newest checkpoint, says so, and continues from the newest
    /// intact one to the uninterrupted result; `--resume PATH` on the damaged file refuses and
    /// leaves it as it was; with every checkpoint damaged, auto refuses with each reason.
    func testDamagedNewestCheckpointFallsBackToTheNewestIntact() throws {
        let full = try reference()
        let c = try tinyConfig("split")
        try copyOfReference(to: c)
        let newest = c.out + "/checkpoint_0002.safetensors", older = c.out + "/checkpoint_0001.safetensors"
        try damage(newest)
        let damaged = try Data(contentsOf: URL(fileURLWithPath: newest))
        XCTAssertThrowsError(try train(c, resume: newest)) { e in
            XCTAssertTrue("\(e)".contains("cannot resume from \(newest)") && "\(e)".contains("CRC-32"), "\(e)")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: newest)), damaged, "the damaged file was changed")
        var lines: [String] = []
        let s = try train(c, resume: "auto", log: { lines.append($0) })
        XCTAssertEqual(s.epochsDone, 2)
        XCTAssertTrue(lines.contains { $0.contains("skipping \(newest)") && $0.contains("CRC-32") }, "\(lines)")
        XCTAssertTrue(lines.contains { $0.contains("falling back to \(older)") }, "\(lines)")
        try assertSameTensors(full, newest)   // rewritten by the continued run
        // A truncated file and a damaged one: nothing intact.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: older))
        try bytes.prefix(bytes.count / 3).write(to: URL(fileURLWithPath: older))
        try damage(newest)
        XCTAssertThrowsError(try train(c, resume: "auto")) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains("no intact checkpoint") && m.contains("CRC-32") && m.contains("checkpoint_0001"), m)
        }
    }

    /// `--resume auto` in a folder without checkpoints starts a new run (a requeued job that
    /// was preempted before its first save); a stale temporary file of an interrupted write is
    /// removed and never read.
    func testResumeAutoWithoutCheckpointsStartsANewRunAndRemovesStaleTemporaries() throws {
        let full = try reference()
        let c = try tinyConfig("fresh")
        try FileManager.default.createDirectory(atPath: c.out, withIntermediateDirectories: true)
        let stale = c.out + "/checkpoint_0001.safetensors.tmp.12345"
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: stale))
        var lines: [String] = []
        _ = try train(c, resume: "auto", log: { lines.append($0) })
        XCTAssertTrue(lines.contains { $0.contains("no checkpoint in \(c.out); starting a new run") }, "\(lines)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale))
        try assertSameTensors(full, c.out + "/checkpoint_0002.safetensors")
    }

    func testCheckpointNamesOrderByPosition() {
        XCTAssertEqual(Checkpoint.fileName(Checkpoint.Position(epoch: 3, stepInEpoch: 17)), "checkpoint_0003_000017.safetensors")
        XCTAssertEqual(Checkpoint.position(ofFileName: "checkpoint_0003_000017.safetensors"), Checkpoint.Position(epoch: 3, stepInEpoch: 17))
        XCTAssertEqual(Checkpoint.position(ofFileName: "checkpoint_0012.safetensors"), Checkpoint.Position(epoch: 12))
        for bad in ["checkpoint_0003.safetensors.tmp.99", "checkpoint_.safetensors", "checkpoint_1_2_3.safetensors",
                    "checkpoint_x.safetensors", "model.safetensors"] {
            XCTAssertNil(Checkpoint.position(ofFileName: bad), bad)
        }
        XCTAssertLessThan(Checkpoint.Position(epoch: 3), Checkpoint.Position(epoch: 3, stepInEpoch: 1))
        XCTAssertLessThan(Checkpoint.Position(epoch: 3, stepInEpoch: 900), Checkpoint.Position(epoch: 4))
    }

    // MARK: - Failing writes

    /// metrics.jsonl on a full device (/dev/full: every write fails with ENOSPC): the run stops
    /// with the reason at the first record, before any checkpoint.
    func testFailingMetricsWriteStopsTheRun() throws {
        let c = try tinyConfig("full-disk")
        try FileManager.default.createDirectory(atPath: c.out, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: c.out + "/metrics.jsonl", withDestinationPath: "/dev/full")
        XCTAssertThrowsError(try train(c)) { e in
            XCTAssertTrue("\(e)".contains("cannot write metrics to \(c.out)/metrics.jsonl") && "\(e)".contains("No space left"), "\(e)")
        }
        XCTAssertNil(Checkpoint.latest(in: c.out))
    }
}
