import XCTest
import Foundation
@testable import MoCo
import MoCoComm
import MoCoTestSupport
import SafeTensors
@testable import TensorBoard

/// The event files read back by TensorBoard's own reader (the `tensorboard` pip package, through
/// scripts/read_tensorboard.py): a short run that is continued twice, once after a failure
/// that left records past its checkpoint, against its metrics.jsonl; and TensorBoard's purge of
/// a restarted session.
///
/// The Python comes from MOCO_TB_PYTHON (.ci/run sets it to its venv's), else `python3` on
/// PATH. Without the package these tests skip, except under CI=true, where they fail.
final class TensorBoardReaderTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("moco-tbread-\(getpid())-\(name.hashValue)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    static let script = repositoryRoot.appendingPathComponent("scripts/read_tensorboard.py")

    func python() throws -> URL { try pythonWith(modules: ["tensorboard"]) }

    typealias Series = [String: [(step: Int, value: Float)]]

    /// What TensorBoard reads from `dir`. (JSONDecoder, not JSONSerialization: Foundation's
    /// JSONSerialization on Linux does not round every decimal to the nearest double.)
    func read(_ dir: String) throws -> Series {
        let r = try runProcess(try python(), [Self.script.path, dir], timeout: 120)
        XCTAssertEqual(r.status, 0, r.stderr)
        let o = try JSONDecoder().decode([String: [[Double]]].self, from: Data(r.stdout.utf8))
        return o.mapValues { $0.map { (Int($0[0]), Float($0[1])) } }
    }

    /// A metrics.jsonl record: its type, step and numeric fields.
    struct Record: Decodable {
        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(_ s: String) { stringValue = s }
            init?(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { return nil }
        }
        let type: String, step: Int
        let values: [String: Double]
        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: Key.self)
            type = try c.decode(String.self, forKey: Key("type"))
            step = try c.decode(Int.self, forKey: Key("step"))
            var v: [String: Double] = [:]
            for k in c.allKeys where k.stringValue != "type" { v[k.stringValue] = try c.decode(Double.self, forKey: k) }
            values = v
        }
    }

    func records(_ out: String) throws -> [Record] {
        try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(Record.self, from: Data($0.utf8)) }
    }

    /// TensorBoard's view of `tbDir` holds exactly the records' values under their tags (float32).
    func assertSameScalars(_ records: [Record], _ tb: Series, tags: [String: [String: String]],
                           file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Set(tb.keys), Set(tags.values.flatMap(\.values)), file: file, line: line)
        for (type, fields) in tags {
            let rows = records.filter { $0.type == type }
            for (field, tag) in fields {
                let expected = rows.map { ($0.step, Float($0.values[field] ?? .nan)) }
                let got = tb[tag] ?? []
                XCTAssertEqual(got.map(\.step), expected.map(\.0), tag, file: file, line: line)
                XCTAssertEqual(got.map(\.value), expected.map(\.1), tag, file: file, line: line)
            }
        }
    }

    /// Fails before one global step, leaving the records of the steps before it and no checkpoint.
    struct FailBefore: TrainingHooks {
        let step: Int
        func beforeStep(_ s: Int, model: ContrastiveMethod) throws {
            if s == step { throw ConfigError("injected failure before step \(s)") }
        }
        func afterStep(_ step: Int, model: ContrastiveMethod) {}
        func willWrite(_ w: SafeTensorsWriter, to path: String) throws {}
    }

    /// metrics.jsonl's fields and the TensorBoard tags they go to (docs/training.md, "Output").
    static let trainTags = [
        "loss": "train/loss", "acc1": "train/acc1", "lr": "train/lr", "images_per_s": "train/images_per_s",
        "step_ms": "time/step_ms", "data_wait_ms": "time/data_wait_ms", "query_forward_ms": "time/query_forward_ms",
        "key_forward_ms": "time/key_forward_ms", "loss_ms": "time/loss_ms", "backward_ms": "time/backward_ms",
        "allreduce_wait_ms": "time/allreduce_wait_ms", "optimizer_ms": "time/optimizer_ms", "enqueue_ms": "time/enqueue_ms",
    ]
    static let knnTags = ["knn_top1": "knn/top1"]

    /// A short run in two invocations, 2 steps per epoch: the first fails before step 4, after
    /// its checkpoint at step 2 and the record of step 3 (a record past its checkpoint); the
    /// continuation (`--resume auto`) trains steps 3 and 4 and logs step 3 again. TensorBoard
    /// must show every step of every tag once, with metrics.jsonl's values (as float32), and
    /// metrics.jsonl must hold each step once too. (No kNN: the monitor's 1000 test images take
    /// minutes in a debug build; `testRunLogWritesBothFiles` has kNN records.)
    func testTensorBoardReadsTheScalarsOfMetricsJsonl() throws {
        _ = try python()
        var c = try TrainConfig.preset("moco-v1")
        c.data = .synthetic; c.trainSubset = 16; c.batchSize = 8; c.epochs = 2
        c.moco.queueSize = 16; c.moco.bnSplits = 2; c.knnEvery = 0; c.logEvery = 1; c.saveEvery = 1
        c.engine.conv = .im2col   // the fastest algorithm in a debug build
        c.out = tmp.appendingPathComponent("run").path
        XCTAssertThrowsError(try Trainer(config: c, comm: SingleProcessCommunicator(), hooks: FailBefore(step: 4), say: { _ in })
            .run())
        let tbDir = c.out + "/tb"
        XCTAssertEqual(try EventFiles.list(in: tbDir).flatMap { try EventFiles.scalars(of: $0) }.filter { $0.tag == "train/loss" }.map(\.step),
                       [1, 2, 3], "the failed invocation logged step 3")
        XCTAssertEqual(try records(c.out).map(\.step), [1, 2, 3])
        var notes: [String] = []
        let done = try Trainer(config: c, comm: SingleProcessCommunicator(), say: { notes.append($0) }).run(resume: "auto")
        XCTAssertEqual(done.steps, 4)
        XCTAssertTrue(notes.contains { $0.contains("removed 1 record(s) after step 2") }, notes.joined(separator: "\n"))
        XCTAssertTrue(notes.contains { $0.contains("removed 1 TensorBoard event(s) of steps after 2") }, notes.joined(separator: "\n"))
        XCTAssertEqual(EventFiles.list(in: tbDir).count, 2, "one event file per invocation")

        let logged = try records(c.out)
        XCTAssertEqual(logged.map(\.step), [1, 2, 3, 4], "metrics.jsonl: each step once")
        for r in logged { XCTAssertEqual(Set(r.values.keys), Set(Self.trainTags.keys).union(["epoch", "step", "elapsed_s"])) }
        let tb = try read(tbDir)
        assertSameScalars(logged, tb, tags: ["train": Self.trainTags])
        // The values are real: the loss moved, the phases were timed.
        XCTAssertEqual(Set(tb["train/loss"]!.map(\.value)).count, 4)
        XCTAssertTrue(tb["time/backward_ms"]!.allSatisfy { $0.value > 0 })
        // This module's reader agrees with TensorBoard's.
        let own = try EventFiles.list(in: tbDir).flatMap { try EventFiles.scalars(of: $0) }.filter { $0.tag == "train/lr" }
        XCTAssertEqual(own.map(\.step), tb["train/lr"]!.map(\.step))
        XCTAssertEqual(own.map(\.value), tb["train/lr"]!.map(\.value))
    }

    /// Rank 0's log directly: train and kNN records, then a continuation after step 20 that
    /// removes the later ones from both files and logs them again.
    func testRunLogWritesBothFiles() throws {
        _ = try python()
        let out = tmp.appendingPathComponent("log").path
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        func stats(_ i: Int) -> ProgressWindow.Stats {
            var t = StepTimings()
            t.queryForward = 0.01 * Double(i); t.keyForward = 0.02; t.loss = 1e-4; t.backward = 0.03 + 1e-7 * Double(i)
            t.allreduceWait = 1.0 / 3.0; t.optimizer = 0.005; t.enqueue = 0
            return .init(loss: 8 - 0.1 * Double(i), acc1: Double(i), imagesPerSecond: 100.0 / 7.0, stepSeconds: 0.12,
                         dataWait: 2e-5, timings: t)
        }
        var log = try RunLog(out: out, continuingAfter: 0, note: { _ in })
        for s in stride(from: 10, through: 30, by: 10) {
            try log.write(.train(epoch: s / 20, step: s, elapsed: Double(s), lr: 0.06 / Double(s), window: stats(s)))
            if s % 20 == 0 { try log.write(.knn(epoch: s / 20, step: s, elapsed: Double(s), top1: 12.345 + Double(s))) }
        }
        log.close()
        var notes: [String] = []
        log = try RunLog(out: out, continuingAfter: 20, note: { notes.append($0) })
        XCTAssertEqual(notes.count, 2, "\(notes)")
        try log.write(.train(epoch: 1, step: 30, elapsed: 5, lr: 0.002, window: stats(31)))
        try log.write(.knn(epoch: 2, step: 40, elapsed: 6, top1: 99.5))
        log.close()

        let logged = try records(out)
        XCTAssertEqual(logged.map { "\($0.type)@\($0.step)" }, ["train@10", "train@20", "knn@20", "train@30", "knn@40"])
        assertSameScalars(logged, try read(out + "/tb"), tags: ["train": Self.trainTags, "knn": Self.knnTags])
    }

    /// TensorBoard drops the events of an earlier session from a `SessionLog` START on, so a
    /// continuation shows each step once even where the earlier file could not be pruned
    /// (e.g. TensorBoard had already loaded it).
    func testTensorBoardHonoursSessionStart() throws {
        _ = try python()
        let dir = tmp.appendingPathComponent("tb").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let first = try EventFileWriter(directory: dir)
        try first.addSessionStart(step: 1)
        for s in 1...5 { try first.addScalars([("x", Float(s))], step: s) }
        first.close()
        let second = try EventFileWriter(directory: dir)
        try second.addSessionStart(step: 4)
        for s in 4...6 { try second.addScalars([("x", Float(10 * s))], step: s) }
        second.close()
        let tb = try read(dir)
        XCTAssertEqual(tb["x"]?.map(\.step), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(tb["x"]?.map(\.value), [1, 2, 3, 40, 50, 60])
    }
}
