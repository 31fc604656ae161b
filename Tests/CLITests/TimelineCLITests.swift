import XCTest
import Foundation
import MoCoTestSupport
import SafeTensors

/// `moco train --timeline` and `moco bench step --timeline` end to end: the trace parses as the
/// Trace Event Format's JSON array, holds each step with its phases inside it, the data wait,
/// the collectives, the kNN and the save; the run is bitwise the run without it; an existing
/// trace is not replaced. (Two ranks: DistributedTrainingTests.testTimelineOfTwoRanks.)
final class TimelineCLITests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("moco-tlcli-\(getpid())-\(name.hashValue)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func moco(_ args: [String]) throws -> ProcessResult {
        guard let exe = builtExecutable("moco") else {
            XCTFail("the moco executable is not built (swift build)"); throw XCTSkip("no moco")
        }
        return try runProcess(exe, args, environment: mpiEnvironment, timeout: 300)
    }

    static let tiny = ["train", "--data", "synthetic", "--train-subset", "64", "--batch-size", "16", "--queue-size", "48",
                       "--bn-splits", "2", "--epochs", "1", "--knn-every", "1", "--threads", "1", "--seed", "4"]

    static func spans(_ path: String) throws -> [[String: Any]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let all = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [[String: Any]], "\(path): not a JSON array")
        return all.filter { $0["ph"] as? String == "X" }
    }

    func testTrainTimelineHoldsStepsPhasesAndCollectives() throws {
        let trace = tmp.appendingPathComponent("trace.json").path
        let a = tmp.appendingPathComponent("a").path, b = tmp.appendingPathComponent("b").path
        let r = try moco(Self.tiny + ["--out", a, "--timeline", trace])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("timeline: \(trace)"), r.stdout)
        let e = try Self.spans(trace)
        let steps = e.filter { $0["cat"] as? String == "step" }
        XCTAssertEqual(steps.compactMap { $0["name"] as? String }, ["step 1", "step 2", "step 3", "step 4"])
        let run = e.filter { $0["cat"] as? String == "run" }.compactMap { $0["name"] as? String }
        XCTAssertEqual(run, ["kNN after epoch 1", "save epoch 1"])
        let phases = e.filter { $0["cat"] as? String == "phase" }
        for name in ["data wait", "key forward", "query forward", "loss", "backward", "allreduce wait", "enqueue", "optimizer"] {
            XCTAssertEqual(phases.filter { $0["name"] as? String == name }.count, 4, name)
        }
        // Every phase inside its step's span (1 µs for the printed rounding).
        for p in phases {
            let ts = p["ts"] as! Double, end = ts + (p["dur"] as! Double)
            XCTAssertTrue(steps.contains { s in
                let s0 = s["ts"] as! Double
                return ts >= s0 - 1e-3 && end <= s0 + (s["dur"] as! Double) + 1e-3
            }, "\(p) outside every step")
        }
        let comm = Set(e.filter { $0["cat"] as? String == "comm" }.compactMap { $0["name"] as? String })
        XCTAssertTrue(comm.isSuperset(of: ["alltoallv", "allgather", "allreduce"]), "\(comm)")

        // The same run without the timeline: the same checkpoint, tensor for tensor.
        let r2 = try moco(Self.tiny + ["--out", b])
        XCTAssertEqual(r2.status, 0, r2.stderr)
        let fa = try SafeTensorsFile(path: a + "/checkpoint_0001.safetensors")
        let fb = try SafeTensorsFile(path: b + "/checkpoint_0001.safetensors")
        XCTAssertEqual(fa.names, fb.names)
        for n in fa.names {
            XCTAssertEqual(try fa.withRawBytes(n) { Array($0) }, try fb.withRawBytes(n) { Array($0) }, "\(n) differs")
        }

        // An existing trace is not replaced; the run does not start.
        let before = try Data(contentsOf: URL(fileURLWithPath: trace))
        let c = tmp.appendingPathComponent("c").path
        let r3 = try moco(Self.tiny + ["--out", c, "--timeline", trace])
        XCTAssertNotEqual(r3.status, 0)
        XCTAssertTrue(r3.stderr.contains("exists"), r3.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: trace)), before)
        XCTAssertFalse(FileManager.default.fileExists(atPath: c + "/checkpoint_0001.safetensors"))
    }

    func testBenchStepTimeline() throws {
        let trace = tmp.appendingPathComponent("bench.json").path
        let r = try moco(["bench", "step", "--batch-size", "16", "--queue-size", "64", "--warmup", "1", "--steps", "2",
                          "--threads", "1", "--timeline", trace])
        XCTAssertEqual(r.status, 0, r.stderr)
        let e = try Self.spans(trace)
        XCTAssertEqual(e.filter { $0["cat"] as? String == "step" }.compactMap { $0["name"] as? String },
                       ["warm-up step 1", "step 1", "step 2"])
        XCTAssertEqual(e.filter { $0["name"] as? String == "backward" }.count, 3)
    }

    /// `bench step --json` carries the FMA peak measured in the same run and the time inside
    /// each collective per step.
    func testBenchStepJSONHasFMAPeakAndCollectiveTimes() throws {
        let r = try moco(["bench", "step", "--batch-size", "16", "--queue-size", "64", "--warmup", "1", "--steps", "2",
                          "--threads", "1", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let line = try XCTUnwrap(r.stdout.split(separator: "\n").first { $0.hasPrefix("{") })
        let j = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let fma = try XCTUnwrap(j["fma_peak_gflops"] as? Double)
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        if cpu.contains(" avx2") && cpu.contains(" fma") {
            XCTAssertGreaterThan(fma, 4)
            let fraction = try XCTUnwrap(j["fraction_of_fma_peak"] as? Double)
            XCTAssertEqual(fraction, (j["gflops"] as! Double) / fma, accuracy: 1e-9)
        }
        let ms = try XCTUnwrap(j["comm_ms_per_step"] as? [String: Double])
        XCTAssertNotNil(ms["allgather"], "the key all-gather is timed: \(ms)")
    }
}
