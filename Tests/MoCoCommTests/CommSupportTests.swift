import XCTest
@testable import MoCoComm

/// Pieces that need no communication: errors, stats arithmetic, launcher detection, the clock.
final class CommSupportTests: XCTestCase {
    func testErrorDescriptions() {
        XCTAssertEqual(CommError.peerFailed(rank: 3, message: "disk full").description, "rank 3 failed: disk full")
        XCTAssertEqual(CommError.peerFailed(rank: 3, message: "x").failedRank, 3)
        // MPI is not initialised in the test process: the text falls back, the format stays.
        XCTAssertEqual(CommError.mpi(call: "MPI_Allreduce", code: 2).description,
                       "MPI_Allreduce failed: MPI error (MPI not active) (code 2)")
    }

    func testRingEstimateAndTotals() {
        var s = CommStats(worldSize: 4)
        s.record(.allreduce, bytes: 1000, seconds: 0.5)
        s.record(.iallreduce, bytes: 600, seconds: 0.25)
        s.addSeconds(.iallreduce, 0.25)
        s.record(.allgather, bytes: 10, seconds: 0)
        XCTAssertEqual(s.allreduceBytes, 1600)
        XCTAssertEqual(s.ringAllreduceBytesEstimate, 2400)     // 2 * 3/4 * 1600
        XCTAssertEqual(s.totalBytesSent, 1610)
        XCTAssertEqual(s.totalCalls, 3)
        XCTAssertEqual(s[.iallreduce].seconds, 0.5)
        XCTAssertTrue(s.description.contains("allreduce: 1 calls, 1000 B sent, 0.500 s"), s.description)
    }

    func testByteAccountingRules() {
        XCTAssertEqual(ByteAccounting.allreduce(count: 10, elementSize: 8), 80)
        XCTAssertEqual(ByteAccounting.alltoallv(sendCounts: [1, 2, 3], rank: 1, elementSize: 4), 16)
        XCTAssertEqual(ByteAccounting.broadcast(bytes: 64, root: 2, rank: 2), 64)
        XCTAssertEqual(ByteAccounting.broadcast(bytes: 64, root: 2, rank: 0), 0)
    }

    func testLauncherDetection() throws {
        XCTAssertFalse(Communicators.launchedByMPI(environment: [:]))
        XCTAssertTrue(Communicators.launchedByMPI(environment: ["OMPI_COMM_WORLD_SIZE": "2"]))
        XCTAssertTrue(Communicators.launchedByMPI(environment: ["PMIX_RANK": "0"]))
        XCTAssertTrue(Communicators.launchedByMPI(environment: ["PMI_RANK": "0"]))
        let env = ProcessInfo.processInfo.environment
        if !Communicators.launchedByMPI(environment: env) {
            XCTAssertTrue(try Communicators.make(environment: env) is SingleProcessCommunicator)
        }
    }

    func testMonotonicClock() {
        let a = MonotonicClock.now()
        let watch = Stopwatch()
        usleep(2000)
        XCTAssertGreaterThan(MonotonicClock.now(), a)
        XCTAssertGreaterThanOrEqual(watch.elapsed, 0.002)
    }
}
