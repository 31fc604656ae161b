import XCTest
import Foundation
import MoCoTestSupport

/// `moco replay` on the committed short trajectory: the verdict uses the file's noise envelope,
/// `--perturb` moves the replay, and a bad `--perturb` is refused.
final class ReplayCLITests: XCTestCase {
    func moco(_ args: [String]) throws -> ProcessResult {
        guard let exe = builtExecutable("moco") else {
            XCTFail("the moco executable is not built (swift build)"); throw XCTSkip("no moco")
        }
        return try runProcess(exe, args, environment: mpiEnvironment, timeout: 300)
    }

    func json(_ r: ProcessResult) throws -> [String: Any] {
        let line = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], r.stdout + r.stderr)
    }

    func testReplayJudgesByTheEnvelopeAndPerturbMovesIt() throws {
        let base = ["replay", "--trajectory", ReferenceFiles.committedTrajectory, "--conv", "im2col", "--threads", "1", "--json"]
        let plain = try moco(base)
        XCTAssertEqual(plain.status, 0, plain.stderr)
        let a = try json(plain)
        XCTAssertEqual(a["pass"] as? Bool, true)
        XCTAssertEqual(a["used_envelope"] as? Bool, true)
        XCTAssertEqual(a["factor"] as? Double, 3)
        XCTAssertEqual((a["loss_envelope"] as? [Double])?.count, 5)

        let moved = try moco(base + ["--perturb", "5.96e-8", "--perturb-seed", "2"])
        XCTAssertEqual(moved.status, 0, moved.stderr)
        let b = try json(moved)
        let la = try XCTUnwrap(a["loss"] as? [Double]), lb = try XCTUnwrap(b["loss"] as? [Double])
        XCTAssertGreaterThan(abs(la[4] - lb[4]), 1e-3, "one rounding of the initial weights moves step 5")
        XCTAssertNotNil(b["perturb"])
    }

    func testBadPerturbIsRefused() throws {
        let r = try moco(["replay", "--trajectory", ReferenceFiles.committedTrajectory, "--perturb", "2"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--perturb must be in (0, 1)"), r.stderr)
    }
}
