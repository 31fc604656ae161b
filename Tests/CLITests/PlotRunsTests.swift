import XCTest
import Foundation
import MoCoTestSupport

/// scripts/plot_runs.py on generated runs: the three PNGs, the baselines, a continued run's
/// records and clock, and its errors. Needs matplotlib (`pythonWith`).
final class PlotRunsTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("moco-plot-\(getpid())-\(name.hashValue)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    static let script = repositoryRoot.appendingPathComponent("scripts/plot_runs.py").path

    /// A run folder: config.json and metrics.jsonl of 3 epochs of 4 steps, logged every 2 steps,
    /// kNN after each epoch; `continued`: as a run stopped after step 6 and continued from the
    /// checkpoint at step 4 leaves it (steps 6 logged twice, elapsed_s restarting at 0).
    func makeRun(_ name: String, data: String, continued: Bool = false) throws -> String {
        let dir = tmp.appendingPathComponent(name).path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data(#"{"data": "\#(data)", "epochs": 3}"#.utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        var lines: [String] = []
        func train(_ step: Int, _ elapsed: Double, loss: Double) {
            lines.append(#"{"type":"train","epoch":\#((step - 1) / 4),"step":\#(step),"loss":\#(loss),"acc1":\#(10.0 * Double(step)),"lr":0.06,"images_per_s":100,"elapsed_s":\#(elapsed)}"#)
        }
        func knn(_ epoch: Int, _ elapsed: Double) {
            lines.append(#"{"type":"knn","epoch":\#(epoch),"step":\#(4 * epoch),"knn_top1":\#(60.0 + Double(epoch)),"elapsed_s":\#(elapsed)}"#)
        }
        if continued {
            for s in [2, 4] { train(s, Double(s), loss: 9) }
            knn(1, 4.5)
            train(6, 6, loss: 99)                           // stale: logged again below
            for s in [6, 8] { train(s, Double(s - 4), loss: 8) }   // the continuation's clock starts at 0
            knn(2, 4.5)
            for s in [10, 12] { train(s, Double(s - 4), loss: 7) }
            knn(3, 8.5)
        } else {
            for s in stride(from: 2, through: 12, by: 2) {
                train(s, Double(s), loss: 10 - Double(s) / 2)
                if s % 4 == 0 { knn(s / 4, Double(s) + 0.5) }
            }
        }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: dir + "/metrics.jsonl"))
        return dir
    }

    func plot(_ args: [String]) throws -> ProcessResult {
        try runProcess(try pythonWith(modules: ["matplotlib"]), [Self.script] + args, timeout: 120)
    }

    /// PNG signature and IHDR size of a file.
    func pngSize(_ path: String) throws -> (width: Int, height: Int)? {
        let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        guard b.count > 24, Array(b[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], Array(b[12..<16]) == Array("IHDR".utf8)
        else { return nil }
        func be(_ i: Int) -> Int { b[i..<(i + 4)].reduce(0) { $0 << 8 | Int($1) } }
        return (be(16), be(20))
    }

    func testPlotsOverlaidRunsWithBaselines() throws {
        let a = try makeRun("a", data: "fashion-mnist"), b = try makeRun("b", data: "fashion-mnist", continued: true)
        let out = tmp.appendingPathComponent("plots").path
        let r = try plot([a, b + "/metrics.jsonl", "--out", out, "--label", "first", "--label", "continued"])
        XCTAssertEqual(r.status, 0, r.stderr)
        for name in ["loss", "contrastive_top1", "knn_top1"] {
            let size = try pngSize(out + "/\(name).png")
            XCTAssertNotNil(size, name)
            XCTAssertGreaterThan(size?.width ?? 0, 500, name)
            XCTAssertTrue(r.stderr.contains("wrote \(out)/\(name).png"), r.stderr)
        }
        // The same plot without the baselines is a different picture.
        let bare = tmp.appendingPathComponent("bare").path
        XCTAssertEqual(try plot([a, b, "--out", bare, "--no-baselines"]).status, 0)
        XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: out + "/knn_top1.png")),
                          try Data(contentsOf: URL(fileURLWithPath: bare + "/knn_top1.png")))
    }

    /// The continued run's records as the script reads them: each step once (the later record),
    /// epochs from the steps, the wall clock made continuous; the default baselines only for
    /// Fashion-MNIST runs.
    func testRecordsOfAContinuedRun() throws {
        let b = try makeRun("b", data: "fashion-mnist", continued: true), s = try makeRun("s", data: "synthetic")
        let code = """
        import json, sys
        sys.path.insert(0, sys.argv[1])
        import plot_runs as p
        r = p.load(sys.argv[2] + "/metrics.jsonl")
        print(json.dumps({"steps": [[q["type"], q["step"], q.get("loss")] for q in r],
                          "epochs": p.epochs(r, p.steps_per_epoch(r)), "minutes": p.wall_minutes(r),
                          "fm": p.dataset(sys.argv[2]), "syn": p.dataset(sys.argv[3])}))
        """
        let r = try runProcess(try pythonWith(modules: ["matplotlib"]), ["-c", code, repositoryRoot.path + "/scripts", b, s], timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let steps = try XCTUnwrap(o["steps"] as? [[Any]])
        XCTAssertEqual(steps.map { "\($0[0])@\($0[1])" },
                       ["train@2", "train@4", "knn@4", "train@6", "train@8", "knn@8", "train@10", "train@12", "knn@12"])
        XCTAssertEqual(steps[3][2] as? Double, 8, "the continuation's record of step 6, not the stale one")
        XCTAssertEqual(o["epochs"] as? [Double], [0.5, 1, 1, 1.5, 2, 2, 2.5, 3, 3])
        let minutes = try XCTUnwrap(o["minutes"] as? [Double]).map { ($0 * 60 * 1000).rounded() / 1000 }
        XCTAssertEqual(minutes, [2, 4, 4.5, 6.5, 8.5, 9, 10.5, 12.5, 13], "seconds, continued over the restart")
        XCTAssertEqual(o["fm"] as? String, "fashion-mnist")
        XCTAssertEqual(o["syn"] as? String, "synthetic")
    }

    func testErrors() throws {
        let a = try makeRun("a", data: "synthetic")
        let missing = try plot([tmp.appendingPathComponent("nope").path, "--out", tmp.path])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("nope: no such file"), missing.stderr)
        let badBaseline = try plot([a, "--out", tmp.path, "--baseline", "pixels"])
        XCTAssertNotEqual(badBaseline.status, 0)
        XCTAssertTrue(badBaseline.stderr.contains("expected NAME=VALUE"), badBaseline.stderr)
        let labels = try plot([a, "--out", tmp.path, "--label", "x", "--label", "y"])
        XCTAssertNotEqual(labels.status, 0)
        XCTAssertTrue(labels.stderr.contains("2 --label for 1 runs"), labels.stderr)
    }
}
