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

    func testUnknownSettingIsRefused() throws {
        guard let exe = builtExecutable("moco") else { XCTFail("the moco executable is not built"); return }
        var env = mpiEnvironment
        env["MOCO_BLAS_CORE"] = "fast"
        let r = try runProcess(exe, ["bench", "step", "--steps", "1"], environment: env, timeout: 60)
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("MOCO_BLAS_CORE='fast' must be auto (the default) or keep"), r.stderr)
    }
}
