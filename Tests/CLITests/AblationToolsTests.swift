import XCTest
import Foundation
import MoCoTestSupport

/// The commands behind docs/ablations.md, end to end on tiny inputs: `moco train
/// --log-consistency`, `moco temperature` on a tiny checkpoint, `moco memory`.
final class AblationToolsTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("moco-ablate-\(getpid())-\(name.hashValue)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func moco(_ args: [String]) throws -> ProcessResult {
        guard let exe = builtExecutable("moco") else {
            XCTFail("the moco executable is not built (swift build)"); throw XCTSkip("no moco")
        }
        return try runProcess(exe, args, environment: mpiEnvironment, timeout: 300)
    }

    func csvRows(_ path: String) throws -> [[String]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }

    /// A 2-step MoCo run with consistency records, then the softmax scores of its checkpoint: a
    /// histogram of 1 positive and K = 32 negatives per query at each T, and a small T
    /// concentrates the negatives' mass on fewer of them than a large T.
    func testConsistencyRecordsAndTemperatureOnATinyCheckpoint() throws {
        let out = tmp.appendingPathComponent("run").path
        let r = try moco(["train", "--data", "synthetic", "--train-subset", "32", "--batch-size", "16", "--queue-size", "32",
                          "--bn-splits", "2", "--epochs", "1", "--knn-every", "0", "--log-consistency", "1", "--consistency-sample", "16",
                          "--threads", "1", "--out", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        let metrics = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8)
        let cons = metrics.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["type"] as? String == "consistency" }
        XCTAssertEqual(cons.map { $0["step"] as? Int }, [1, 2])
        XCTAssertEqual(cons.map { $0["age"] as? Double }, [0, 0.5])

        let prefix = tmp.appendingPathComponent("temp").path
        let t = try moco(["temperature", "--weights", out + "/checkpoint_0001.safetensors", "--t", "0.05,0.5", "--images", "8",
                          "--threads", "1", "--out", prefix])
        XCTAssertEqual(t.status, 0, t.stderr)
        let hist = try csvRows(prefix + "_hist.csv")
        for (tv, kind, total) in [("0.05", "positive", 8), ("0.05", "negative", 8 * 32), ("0.5", "negative", 8 * 32)] {
            XCTAssertEqual(hist.filter { $0[0] == tv && $0[1] == kind }.map { Int($0[4])! }.reduce(0, +), total, "\(tv) \(kind)")
        }
        let summary = try csvRows(prefix + "_summary.csv")
        XCTAssertEqual(summary.map { $0[0] }, ["0.05", "0.5"])
        XCTAssertLessThan(Double(summary[0][6])!, Double(summary[1][6])!, "effective negatives at T = 0.05 and 0.5")

        let e2e = try moco(["train", "--data", "synthetic", "--mechanism", "end-to-end", "--log-consistency", "5", "--dry-run"])
        XCTAssertNotEqual(e2e.status, 0)
        XCTAssertTrue(e2e.stderr.contains("needs --mechanism moco or memory-bank"), e2e.stderr)
    }

    /// Queue dim x K x 4 bytes whatever N; bank N x dim x 4 plus its per-step draws (n·K Int32)
    /// and their grouping ((N + 1) + N + n(1 + K) Int32), measured at N = 1000 and computed at N = 2000.
    func testMemoryTable() throws {
        let csv = tmp.appendingPathComponent("mem.csv").path
        let r = try moco(["memory", "--dim", "8", "--queue-size", "16", "--batch", "4", "--images", "1000", "--project", "2000",
                          "--csv", csv])
        XCTAssertEqual(r.status, 0, r.stderr)
        let rows = try csvRows(csv)
        let queue: Int = 8 * 16 * 4
        func bank(_ n: Int) -> Int { (n * 8 + (n + 1) + n + 4 * 17 + 4 * 16) * 4 }
        let expected: [[String]] = [["moco queue", "1000", String(queue), "true"], ["memory bank", "1000", String(bank(1000)), "true"],
                                    ["moco queue", "2000", String(queue), "false"], ["memory bank", "2000", String(bank(2000)), "false"]]
        XCTAssertEqual(rows.map { [$0[0], $0[1], $0[4], $0[6]] }, expected)
    }
}
