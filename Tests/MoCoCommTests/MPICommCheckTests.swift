import Foundation
import XCTest
import MoCoTestSupport

/// Runs the `moco-commcheck` executable under mpirun. One class, so XCTest runs these one after
/// another: each job already uses both cores.
final class MPICommCheckTests: XCTestCase {
    static let timeout: Double = 60

    static func commcheckBinary(file: String = #filePath) -> URL? {
        if let override = ProcessInfo.processInfo.environment["MOCO_COMMCHECK"] { return URL(fileURLWithPath: override) }
        return builtExecutable("moco-commcheck", file: file)
    }
    static var mpiEnvironment: [String: String] { MoCoTestSupport.mpiEnvironment }

    private func binary() throws -> URL {
        guard let url = Self.commcheckBinary() else {
            XCTFail("moco-commcheck not found next to the test bundle or in .build/debug; build it with `swift build --product moco-commcheck`")
            throw XCTSkip("no moco-commcheck")
        }
        return url
    }

    private func mpirun(_ np: Int, oversubscribe: Bool = false, _ arguments: [String]) throws -> ProcessResult {
        guard let mpirun = findOnPath("mpirun") else { throw XCTSkip("mpirun is not installed") }
        let exe = try binary()
        let args = ["-np", String(np)] + (oversubscribe ? ["--oversubscribe"] : []) + [exe.path] + arguments
        let result = try runProcess(mpirun, args, environment: Self.mpiEnvironment, timeout: Self.timeout)
        XCTAssertFalse(result.timedOut, "mpirun \(args.joined(separator: " ")) killed after \(Self.timeout) s\n\(result.stdout)\n\(result.stderr)")
        return result
    }

    private func assertAllChecksPass(_ result: ProcessResult, file: StaticString = #filePath, line: UInt = #line) {
        let report = "stdout:\n\(result.stdout)\nstderr:\n\(result.stderr)"
        XCTAssertEqual(result.status, 0, report, file: file, line: line)
        let lines = result.stdout.split(separator: "\n")
        XCTAssertFalse(lines.contains { $0.hasPrefix("FAIL") }, report, file: file, line: line)
        guard let summary = lines.last(where: { $0.hasPrefix("commcheck: ") }) else {
            return XCTFail("no summary line\n\(report)", file: file, line: line)
        }
        XCTAssertTrue(summary.hasSuffix(" passed, 0 failed"), String(summary), file: file, line: line)
        let passed = lines.filter { $0.hasPrefix("ok ") }.count
        XCTAssertGreaterThanOrEqual(passed, 20, report, file: file, line: line)
        XCTAssertEqual(String(summary), "commcheck: \(passed) passed, 0 failed", file: file, line: line)
    }

    func testCommCheckWithoutMpirunUsesSingleProcess() throws {
        var env = Self.mpiEnvironment
        env["OMPI_MCA_pml"] = nil
        let result = try runProcess(try binary(), [], environment: env, timeout: Self.timeout)
        XCTAssertFalse(result.timedOut)
        XCTAssertTrue(result.stdout.contains("SingleProcessCommunicator"), result.stdout)
        assertAllChecksPass(result)
    }

    func testCommCheckTwoRanks() throws {
        assertAllChecksPass(try mpirun(2, []))
    }

    func testCommCheckFourRanksOversubscribed() throws {
        assertAllChecksPass(try mpirun(4, oversubscribe: true, []))
    }

    /// Every check with the MPI progress thread started (every MPI call behind its lock), and
    /// the thread's own: idle while nothing is pending, completing a 16 MB allreduce while the
    /// ranks compute without calling MPI.
    func testCommCheckWithProgressThreadTwoRanks() throws {
        let result = try mpirun(2, ["progress", "200"])
        assertAllChecksPass(result)
        XCTAssertTrue(result.stdout.contains("progress thread every 200 us"), result.stdout)
        XCTAssertTrue(result.stdout.contains("ok progress-thread-advances"), result.stdout)
        XCTAssertTrue(result.stdout.contains("ok progress-thread-idle"), result.stdout)
    }

    func testCommCheckWithProgressThreadFourRanksOversubscribed() throws {
        let result = try mpirun(4, oversubscribe: true, ["progress", "500"])
        assertAllChecksPass(result)
        XCTAssertTrue(result.stdout.contains("ok progress-thread-advances"), result.stdout)
    }

    func testCheckFailureOnOneRankIsReportedByAllAndExitsOne() throws {
        let result = try mpirun(4, oversubscribe: true, ["inject-fail", "alltoallv-unequal", "2"])
        XCTAssertEqual(result.status, 1, result.stderr)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("FAIL alltoallv-unequal: rank 2: injected mismatch"), result.stdout)
        let oks = lines.filter { $0.hasPrefix("ok ") }.count
        XCTAssertEqual(lines.last, "commcheck: \(oks) passed, 1 failed", result.stdout)
    }

    func testFailingRankTerminatesTheJob() throws {
        let result = try mpirun(2, ["fail-rank", "1"])
        XCTAssertNotEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("rank 1: injected failure"), result.stderr)
    }

    func testFailingRankZeroOfFourTerminatesTheJob() throws {
        let result = try mpirun(4, oversubscribe: true, ["fail-rank", "0"])
        XCTAssertNotEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("rank 0: injected failure"), result.stderr)
    }

    func testBenchPrintsTable() throws {
        let result = try mpirun(2, ["bench", "2", "4096"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 4, result.stdout)
        XCTAssertTrue(lines.dropFirst().allSatisfy { !$0.contains(" - ") }, "raw MPI column missing:\n\(result.stdout)")
    }
}
