import XCTest
import Foundation
import MoCoTensor
import MoCoLayers
import MoCoComm
import SafeTensors
import MoCoData
@testable import MoCo

/// `--log-consistency`: the entries' ledger, the probe's cosine and age, and that measuring
/// changes nothing in the run (issue 12, key consistency).
final class ConsistencyTests: XCTestCase {
    let quiet: (String) -> Void = { _ in }

    func tinyConfig(out: String, mechanism: Mechanism = .moco, m: Float = 0.99, queue: Int = 16) throws -> TrainConfig {
        var c = try TrainConfig.preset("moco-v2")
        c.data = .synthetic; c.trainSubset = 24; c.batchSize = 8; c.epochs = 2
        c.moco.mechanism = mechanism; c.moco.momentum = m
        c.moco.queueSize = queue; c.moco.bnSplits = 2; c.knnEvery = 0; c.logEvery = 100; c.saveEvery = 1; c.out = out
        c.engine = EngineConfig(threads: 1, conv: .im2col)
        return c
    }

    func consistencyRecords(_ dir: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8)
        return try text.split(separator: "\n").compactMap {
            let o = try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
            return o["type"] as? String == "consistency" ? o : nil
        }
    }

    func tmpDir(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("moco-consistency-\(name)-\(getpid())")
    }

    /// A queue of K = 24 with batches of 16 (K not a multiple of B): after two steps columns
    /// 16..<24 and 0..<8 hold step 1's keys in global-batch order, 8..<16 step 0's; the view is
    /// the key crop, and the BatchNorm sub-batch that of the shuffled position.
    func testQueueLedgerFollowsTheWrappingPointer() throws {
        var c = MoCoConfig()
        c.dim = 8; c.queueSize = 24; c.bnSplits = 2
        let m = MoCoModel(config: c, inChannels: 1, engine: EngineConfig(threads: 1, conv: .im2col), seed: 3,
                          comm: SingleProcessCommunicator())
        m.startLedger()
        let n = 16, size = 8 * 8
        m.plan(localBatch: n, channels: 1, height: 8, width: 8)
        var rng = Xoshiro(seed: 9)
        let im = FloatBuffer((0..<(n * size)).map { _ in rng.normal() })
        let batches = [Array(100..<116), Array(200..<216)]
        for (s, idx) in batches.enumerated() {
            _ = try m.step(StepInput(imQ: im.ptr, imK: im.ptr, indices: idx, perm: Array((0..<n).reversed()), lr: 0.01, step: s,
                                     epoch: 7))
        }
        let ledger = try XCTUnwrap(m.ledger)
        XCTAssertEqual(ledger.knownSlots, Array(0..<24))
        for slot in 0..<24 {
            let p = try XCTUnwrap(ledger.provenance(slot))
            let (step, i) = slot >= 8 && slot < 16 ? (0, slot) : (1, (slot - 16 + 24) % 24)
            // shuffle-BN with π reversed: sample i is encoded at shuffled position 15 - i, in
            // sub-batch (15 - i) / 8 (two splits of 8).
            XCTAssertEqual(p, .init(index: batches[step][i], epoch: 7, step: step, view: 1, chunk: (15 - i) / 8, position: (15 - i) % 8),
                           "column \(slot)")
        }
        // The stored entry of a column is that column of the queue.
        var e = [Float](repeating: 0, count: 8)
        e.withUnsafeMutableBufferPointer { m.storedEntry(5, into: $0.baseAddress!) }
        XCTAssertEqual(e, (0..<8).map { m.queue.keys.ptr[$0 * 24 + 5] })
    }

    /// Steps `method` over 24 synthetic 8 x 8 images in batches of 8 (3 steps an epoch) as the
    /// trainer does, and measures after each step: -> the measurements.
    func measureSteps(_ method: ContrastiveMethod & StoredEntries, config c: MoCoConfig, steps: Int, lr: Float) throws
        -> [KeyConsistencyProbe.Measurement] {
        let ds = Dataset.synthetic(split: .train, count: 24, height: 8, width: 8)
        let sampler = EpochSampler(datasetCount: 24, globalBatch: 8, seed: 1)
        let engine = EngineConfig(threads: 1, conv: .im2col)
        let probe = KeyConsistencyProbe(config: c, inChannels: 1, engine: engine, sample: 256, subBatch: 4, seed: 1)
        method.startLedger()
        method.plan(localBatch: 8, channels: 1, height: 8, width: 8)
        var out: [KeyConsistencyProbe.Measurement] = []
        for s in 0..<steps {
            let (e, st) = (s / 3, s % 3)
            let b = try TwoCropLoader.batch(dataset: ds, sampler: sampler, config: .mocoV2, seed: 1, rank: 0, worldSize: 1,
                                            epoch: e, step: st)
            let perm = ShuffleBN.permutation(seed: 1, epoch: e, step: st, batch: 8)
            _ = try withExtendedLifetime(b) {
                try method.step(StepInput(imQ: b.query.ptr, imK: b.key.ptr, indices: b.indices, perm: perm, lr: lr, step: s, epoch: e))
            }
            out.append(try XCTUnwrap(probe.measure(method, dataset: ds, augment: .mocoV2, dataSeed: 1, stepsDone: s + 1)))
        }
        return out
    }

    func tinyMoCo(m: Float) -> MoCoConfig {
        var c = MoCoConfig()
        c.dim = 16; c.queueSize = 16; c.bnSplits = 2; c.momentum = m
        return c
    }

    /// K = 2B: after step 1 only its 8 keys are known (age 0), from step 2 on all 16, half of
    /// age 0 and half of age 1, so the mean age is exactly 0.5. With m = 1 the key encoder never
    /// changes and the probe re-encodes each shuffled BatchNorm sub-batch as it was, so the
    /// cosine is 1 up to rounding; with m = 0 the key encoder is the query encoder of the step
    /// before, so the keys of age 1 come from an encoder one SGD step older.
    func testQueueAgeIsExactAndFrozenKeyEncoderIsConsistent() throws {
        var cosines: [Float: [Double]] = [:]
        for m: Float in [1, 0] {
            let c = tinyMoCo(m: m)
            let model = MoCoModel(config: c, inChannels: 1, engine: EngineConfig(threads: 1, conv: .im2col), seed: 2,
                                  comm: SingleProcessCommunicator())
            let r = try measureSteps(model, config: c, steps: 6, lr: 0.5)
            XCTAssertEqual(r.map(\.entries), [8, 16, 16, 16, 16, 16])
            XCTAssertEqual(r.map(\.age), [0, 0.5, 0.5, 0.5, 0.5, 0.5])
            cosines[m] = r.map(\.cos)
        }
        let frozen = cosines[1]!, moving = cosines[0]!
        for x in frozen { XCTAssertEqual(x, 1, accuracy: 1e-5, "m = 1: \(frozen)") }
        XCTAssertEqual(moving[0], 1, accuracy: 1e-5, "m = 0, step 1 (only keys of age 0): \(moving)")
        for x in moving.dropFirst() { XCTAssertLessThan(x, 0.999, "m = 0: \(moving)") }
    }

    /// Bank of 24 rows, batches of 8: after one epoch (3 steps) every row is known, a third
    /// each of age 0, 1 and 2. A row is a blend of the new feature and the old row
    /// (m_b = 0.5), so even the rows just written are not the encoder's features.
    func testMemoryBankAgesAreExact() throws {
        var c = tinyMoCo(m: 0.99)
        c.mechanism = .memoryBank
        let bank = MemoryBankMethod(config: c, inChannels: 1, datasetCount: 24, engine: EngineConfig(threads: 1, conv: .im2col),
                                    seed: 2, comm: SingleProcessCommunicator())
        let r = try measureSteps(bank, config: c, steps: 3, lr: 0.1)
        XCTAssertEqual(r.map(\.entries), [8, 16, 24])
        XCTAssertEqual(r.map(\.age), [0, 0.5, 1])
        for x in r.map(\.cos) { XCTAssertTrue(x > 0 && x < 0.999, "\(x)") }
    }

    /// With m_b = 0 a bank row is the feature itself, and with lr = 0 the encoder never moves:
    /// the probe must then rebuild every row exactly (same crop, same BatchNorm companions).
    func testMemoryBankRowsAreRebuiltExactlyWithoutDrift() throws {
        var c = tinyMoCo(m: 0.99)
        c.mechanism = .memoryBank; c.bankMomentum = 0
        let bank = MemoryBankMethod(config: c, inChannels: 1, datasetCount: 24, engine: EngineConfig(threads: 1, conv: .im2col),
                                    seed: 2, comm: SingleProcessCommunicator())
        let r = try measureSteps(bank, config: c, steps: 3, lr: 0)
        for x in r.map(\.cos) { XCTAssertEqual(x, 1, accuracy: 1e-5, "\(r.map(\.cos))") }
    }

    /// Measuring changes no value of the run: the checkpoints with and without
    /// `--log-consistency` are bitwise identical.
    func testLoggingConsistencyChangesNothing() throws {
        let tmp = tmpDir("same")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let a = tmp.appendingPathComponent("a").path, b = tmp.appendingPathComponent("b").path
        var ca = try tinyConfig(out: a), cb = try tinyConfig(out: b)
        ca.epochs = 1; cb.epochs = 1
        _ = try Trainer(config: ca, comm: SingleProcessCommunicator(), say: quiet).run()
        _ = try Trainer(config: cb, comm: SingleProcessCommunicator(), say: quiet,
                        consistency: ConsistencyLogging(every: 1, sample: 8)).run()
        let r = try consistencyRecords(b)
        XCTAssertEqual(r.map { $0["step"] as! Int }, [1, 2, 3])
        XCTAssertEqual(r.map { $0["entries"] as! Int }, [8, 8, 8])
        let fa = try SafeTensorsFile(path: a + "/checkpoint_0001.safetensors")
        let fb = try SafeTensorsFile(path: b + "/checkpoint_0001.safetensors")
        XCTAssertEqual(fa.names, fb.names)
        for n in fa.names {
            XCTAssertEqual(try fa.withRawBytes(n) { Array($0) }, try fb.withRawBytes(n) { Array($0) }, "\(n) differs")
        }
    }

    func testRefusesMechanismsWithoutStoredNegatives() {
        XCTAssertThrowsError(try ConsistencyLogging(every: 1).validate(mechanism: .endToEnd)) {
            XCTAssertTrue("\($0)".contains("moco or memory-bank"), "\($0)")
        }
        XCTAssertThrowsError(try ConsistencyLogging(every: 0).validate(mechanism: .moco))
        XCTAssertNoThrow(try ConsistencyLogging(every: 5).validate(mechanism: .memoryBank))
    }
}
