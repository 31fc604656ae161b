import XCTest
import Foundation
import MoCoTensor
import MoCoTestSupport

/// `moco` runs OpenBLAS's kernels for this CPU (`BLASCore`, moco/BLASCoreSelection.swift): the
/// kernel set a `moco bench step` reports is the one the decision names for this machine (this
/// test process itself is never re-executed, so it sees what OpenBLAS detected), MOCO_BLAS_CORE=keep
/// is honoured and another value refused. (A user's OPENBLAS_CORETYPE winning is `BLASCoreTests`'
/// concern: the tests never set it, as CI must see the kernels OpenBLAS picks.)
final class BLASCoreCLITests: XCTestCase {
    func benchCore(_ extra: [String: String]) throws -> (core: String, stderr: String) {
        guard let exe = builtExecutable("moco") else {
            XCTFail("the moco executable is not built (swift build)"); throw XCTSkip("no moco")
        }
        var env = mpiEnvironment
        env["MOCO_BLAS_CORE"] = nil
        env["MOCO_BLAS_CORE_DETECTED"] = nil
        for (k, v) in extra { env[k] = v }
        let r = try runProcess(exe, ["bench", "step", "--batch-size", "16", "--queue-size", "64", "--warmup", "0", "--steps", "1",
                                     "--bn-splits", "2", "--threads", "1", "--json"], environment: env, timeout: 300)
        XCTAssertEqual(r.status, 0, r.stderr)
        let line = try XCTUnwrap(r.stdout.split(separator: "\n").last.map(String.init))
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], line)
        return (try XCTUnwrap(json["blas_core"] as? String, line), r.stderr)
    }

    func testRunsTheKernelsOfThisCPU() throws {
        let detected = BLASCore.current   // this process: OpenBLAS's own choice
        // (A user's OPENBLAS_CORETYPE, inherited by the child, is kept as it is.)
        let userSet = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] != nil
        let replacement = userSet ? nil : BLASCore.replacement(for: detected, cpuLevel: BLASCore.cpuVectorLevel)
        let auto = try benchCore([:])
        XCTAssertEqual(auto.core, replacement ?? detected)
        if let replacement {
            XCTAssertTrue(auto.stderr.contains("OpenBLAS detected this CPU as \(detected); running its \(replacement) kernels"), auto.stderr)
        } else {
            XCTAssertFalse(auto.stderr.contains("OpenBLAS detected"), auto.stderr)
        }
        let keep = try benchCore(["MOCO_BLAS_CORE": "keep"])
        XCTAssertEqual(keep.core, detected)
        XCTAssertFalse(keep.stderr.contains("OpenBLAS detected"), keep.stderr)
    }

    /// MOCO_THP (`HugePages`): 0 turns the large buffers' huge pages off, and `bench step` says
    /// so beside the huge-page share of its resident set (0 MB then); another value is refused
    /// before anything runs.
    func testHugePagesSetting() throws {
        guard let exe = builtExecutable("moco") else { XCTFail("the moco executable is not built"); return }
        func bench(_ thp: String?, json: Bool) throws -> ProcessResult {
            var env = mpiEnvironment
            env["MOCO_THP"] = thp
            return try runProcess(exe, ["bench", "step", "--batch-size", "16", "--queue-size", "64", "--warmup", "0", "--steps", "1",
                                        "--bn-splits", "2", "--threads", "1"] + (json ? ["--json"] : []), environment: env, timeout: 300)
        }
        let off = try bench("0", json: false)
        XCTAssertEqual(off.status, 0, off.stderr)
        XCTAssertTrue(off.stdout.contains("MB of it in huge pages (MOCO_THP=0)"), off.stdout)
        let offJSON = try bench("0", json: true)
        let line = try XCTUnwrap(offJSON.stdout.split(separator: "\n").last.map(String.init))
        let j = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], line)
        XCTAssertEqual(j["huge_pages_mb"] as? Double, 0)
        let on = try bench(nil, json: false)
        XCTAssertEqual(on.status, 0, on.stderr)
        XCTAssertTrue(on.stdout.contains("MB of it in huge pages\n"), on.stdout)
        let bad = try bench("yes", json: false)
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("MOCO_THP='yes' must be 1 (the default: huge pages for large buffers) or 0"), bad.stderr)
    }

    func testUnknownSettingIsRefused() throws {
        guard let exe = builtExecutable("moco") else { XCTFail("the moco executable is not built"); return }
        var env = mpiEnvironment
        env["MOCO_BLAS_CORE"] = "fast"
        let r = try runProcess(exe, ["bench", "step", "--steps", "1"], environment: env, timeout: 60)
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("MOCO_BLAS_CORE='fast' must be auto (the default) or keep"), r.stderr)
    }
}
