import XCTest
@testable import MoCoComm

/// The one-rank world: MPI semantics for p = 1, no mpirun needed.
final class SingleProcessCommunicatorTests: XCTestCase {
    func testIdentity() {
        let comm = SingleProcessCommunicator()
        XCTAssertEqual(comm.rank, 0)
        XCTAssertEqual(comm.size, 1)
        XCTAssertEqual(comm.stats.totalCalls, 0)
    }

    func testAllreduceLeavesBuffersUnchangedForEveryOp() throws {
        let comm = SingleProcessCommunicator()
        for op in ReduceOp.allCases {
            var f: [Float] = [1.5, -2, .greatestFiniteMagnitude]
            var d: [Double] = [1e300, -0.0, 3]
            var i: [Int64] = [.min, 0, .max]
            try comm.allreduce(&f, op: op)
            try comm.allreduce(&d, op: op)
            try comm.allreduce(&i, op: op)
            XCTAssertEqual(f, [1.5, -2, .greatestFiniteMagnitude])
            XCTAssertEqual(d.map(\.bitPattern), [1e300, -0.0, 3].map(\.bitPattern))
            XCTAssertEqual(i, [.min, 0, .max])
        }
        XCTAssertEqual(try comm.allreduce(2.5, op: .sum), 2.5)
        XCTAssertEqual(try comm.allreduce(Int64(-4), op: .max), -4)
    }

    func testIallreduceIsCompleteAndWaitIsIdempotent() throws {
        let comm = SingleProcessCommunicator()
        let buf = UnsafeMutablePointer<Float>.allocate(capacity: 4)
        defer { buf.deallocate() }
        buf.initialize(repeating: 7, count: 4)
        let request = try comm.iallreduce(buf, count: 4, op: .sum)
        try request.wait()
        try request.wait()
        XCTAssertTrue(request.isComplete)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: buf, count: 4)), [7, 7, 7, 7])
    }

    func testGathersCopyOwnBlock() throws {
        let comm = SingleProcessCommunicator()
        let send: [Float] = [1, 2, 3]
        var recv = [Float](repeating: 0, count: 4)
        try comm.allgather(send, count: 3, into: &recv)
        XCTAssertEqual(recv, [1, 2, 3, 0])
        recv = [0, 0, 0, 0]
        try comm.allgatherv(send, count: 3, into: &recv, counts: [3])
        XCTAssertEqual(recv, [1, 2, 3, 0])
        XCTAssertEqual(try comm.allgather(Int64(9)), [9])
        XCTAssertEqual(try comm.allgather(bytes: [1, 2]), [[1, 2]])
        XCTAssertEqual(try comm.allgather([Float(4), 5]), [4, 5])
    }

    func testAlltoallvHonoursDisplacements() throws {
        let comm = SingleProcessCommunicator()
        let send: [Float] = [-7, 1, 2, 3]
        var recv = [Float](repeating: -1, count: 6)
        try comm.alltoallv(send: send, sendCounts: [3], sendDispls: [1], recv: &recv, recvCounts: [3], recvDispls: [2])
        XCTAssertEqual(recv, [-1, -1, 1, 2, 3, -1])
        XCTAssertThrowsError(try comm.alltoallv(send: send, sendCounts: [3], sendDispls: [0],
                                                recv: &recv, recvCounts: [2], recvDispls: [0]))
    }

    func testInvalidArgumentsThrowNamingTheCall() {
        let comm = SingleProcessCommunicator()
        var x: Float = 0, y: Float = 0
        XCTAssertThrowsError(try comm.allgatherv(&x, count: 1, into: &y, counts: [1, 1])) { error in
            guard case .invalidArgument(let call, _)? = (error as? CommError)?.kind else { return XCTFail("\(error)") }
            XCTAssertEqual(call, "MPI_Allgatherv")
        }
        XCTAssertThrowsError(try comm.broadcast(&x, bytes: 4, root: 1)) { error in
            XCTAssertEqual("\(error)", "MPI_Bcast: invalid argument: root 1 not in 0..<1")
        }
        XCTAssertThrowsError(try comm.allreduce(&x, count: -1, op: .sum))
    }

    func testBroadcastHelpers() throws {
        let comm = SingleProcessCommunicator()
        XCTAssertEqual(try comm.broadcast(string: "héllo", root: 0), "héllo")
        XCTAssertEqual(try comm.broadcast(bytes: [], root: 0), [])
        XCTAssertEqual(try comm.broadcast([1.5, 2], root: 0), [1.5, 2])
        XCTAssertEqual(try comm.broadcast(Int64(3), root: 0), 3)
    }

    func testAgreement() throws {
        let comm = SingleProcessCommunicator()
        XCTAssertNoThrow(try comm.agree(nil))
        struct Boom: Error, CustomStringConvertible { var description: String { "boom" } }
        XCTAssertThrowsError(try comm.agree(Boom())) { error in
            XCTAssertEqual(error as? CommError, .peerFailed(rank: 0, message: "boom"))
            XCTAssertEqual("\(error)", "rank 0 failed: boom")
        }
        XCTAssertThrowsError(try comm.agree(CommError.peerFailed(rank: 5, message: "inner"))) { error in
            XCTAssertEqual(error as? CommError, .peerFailed(rank: 0, message: "inner"))
        }
        XCTAssertEqual(try comm.agreeing { 42 }, 42)
        XCTAssertEqual(try comm.checksumsAgree([1, .nan, -0.0]), [])
    }

    func testStatsAccountingAndReset() throws {
        let comm = SingleProcessCommunicator()
        var f = [Float](repeating: 0, count: 10)
        try comm.allreduce(&f, op: .sum)
        var d = [Double](repeating: 0, count: 3)
        try comm.allreduce(&d, op: .max)
        try comm.alltoallv(send: f, sendCounts: [4], sendDispls: [0], recv: &f, recvCounts: [4], recvDispls: [5])
        var b = [UInt8](repeating: 0, count: 16)
        try comm.broadcast(&b, bytes: 16, root: 0)
        try comm.barrier()
        let s = comm.stats
        XCTAssertEqual(s[.allreduce], CommStats.Entry(calls: 2, bytesSent: 64, seconds: 0))
        XCTAssertEqual(s[.alltoallv].calls, 1)
        XCTAssertEqual(s[.alltoallv].bytesSent, 0, "alltoallv excludes the block to self")
        XCTAssertEqual(s[.broadcast].bytesSent, 16)
        XCTAssertEqual(s[.barrier].calls, 1)
        XCTAssertEqual(s.totalCalls, 5)
        XCTAssertEqual(s.ringAllreduceBytesEstimate, 0)
        comm.resetStats()
        XCTAssertEqual(comm.stats.totalCalls, 0)
        XCTAssertEqual(comm.stats.description, "no communication")
    }
}
