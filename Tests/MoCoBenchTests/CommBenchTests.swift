import XCTest
import MoCoComm
@testable import MoCoBench

/// The communication benchmark's rows and table on one process (no MPI).
final class CommBenchTests: XCTestCase {
    func testBenchOnSingleProcess() throws {
        let rows = try runCommBench(comm: SingleProcessCommunicator(), sizes: [4096, 3], iterations: 2)
        XCTAssertEqual(rows.map(\.op), [.allreduce, .allgather, .alltoallv, .allreduce, .allgather, .alltoallv])
        XCTAssertEqual(rows.map(\.bytes), [4096, 4096, 4096, 4, 4, 4])
        XCTAssertTrue(rows.allSatisfy { $0.rawSeconds == nil && $0.protocolSeconds >= 0 })
        let table = formatCommBench(rows).split(separator: "\n")
        XCTAssertEqual(table.count, 7)
        XCTAssertTrue(table[0].contains("algbw_GB/s"))
        XCTAssertEqual(CommBenchOp.allreduce.busFactor(ranks: 4), 1.5)
    }
}
