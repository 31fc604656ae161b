#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The world of one process (rank 0, size 1), usable without mpirun and without MPI.
///
/// Every collective has its MPI meaning for a one-rank world: reductions and broadcasts leave the
/// buffer as is, gathers and all-to-all copy the rank's own block. Arguments are validated exactly
/// like `MPICommunicator` does, and `stats` count bytes with the same rules, so a program's
/// statistics do not depend on how it was launched.
public final class SingleProcessCommunicator: Communicator, @unchecked Sendable {
    public let rank = 0
    public let size = 1
    public private(set) var stats = CommStats(worldSize: 1)
    /// Only its backstop applies: one process has no collective to wait in.
    public var watchdog: Watchdog?

    public init() {}

    public func resetStats() { stats = CommStats(worldSize: 1) }

    private func timed(_ kind: CollectiveKind, bytes: Int, _ body: () throws -> Void) rethrows {
        let watch = Stopwatch()
        try body()
        stats.record(kind, bytes: bytes, seconds: watch.elapsed)
    }

    public func allreduce(_ buf: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp) throws {
        try Validate.count(count, "MPI_Allreduce")
        stats.record(.allreduce, bytes: ByteAccounting.allreduce(count: count, elementSize: 4), seconds: 0)
    }

    public func allreduce(_ buf: UnsafeMutablePointer<Double>, count: Int, op: ReduceOp) throws {
        try Validate.count(count, "MPI_Allreduce")
        stats.record(.allreduce, bytes: ByteAccounting.allreduce(count: count, elementSize: 8), seconds: 0)
    }

    public func allreduce(_ buf: UnsafeMutablePointer<Int64>, count: Int, op: ReduceOp) throws {
        try Validate.count(count, "MPI_Allreduce")
        stats.record(.allreduce, bytes: ByteAccounting.allreduce(count: count, elementSize: 8), seconds: 0)
    }

    public func iallreduce(_ buf: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp) throws -> CommRequest {
        try Validate.count(count, "MPI_Iallreduce")
        stats.record(.iallreduce, bytes: ByteAccounting.allreduce(count: count, elementSize: 4), seconds: 0)
        return CompletedRequest()
    }

    public func allgather(_ send: UnsafePointer<Float>, count: Int, into recv: UnsafeMutablePointer<Float>) throws {
        try Validate.count(count, "MPI_Allgather")
        timed(.allgather, bytes: ByteAccounting.allgather(count: count, elementSize: 4)) {
            if UnsafePointer(recv) != send { recv.update(from: send, count: count) }
        }
    }

    public func allgather(bytes send: UnsafeRawPointer, count: Int, into recv: UnsafeMutableRawPointer) throws {
        try Validate.count(count, "MPI_Allgather")
        timed(.allgather, bytes: count) {
            if UnsafeRawPointer(recv) != send { memmove(recv, send, count) }
        }
    }

    public func allgatherv(_ send: UnsafePointer<Float>, count: Int, into recv: UnsafeMutablePointer<Float>,
                           counts: [Int]) throws {
        _ = try Validate.allgathervCounts(counts, count: count, rank: 0, size: 1, "MPI_Allgatherv")
        timed(.allgatherv, bytes: ByteAccounting.allgather(count: count, elementSize: 4)) {
            if UnsafePointer(recv) != send { recv.update(from: send, count: count) }
        }
    }

    public func reduceScatter(_ send: UnsafePointer<Float>, count: Int, into recv: UnsafeMutablePointer<Float>,
                              op: ReduceOp) throws {
        try Validate.count(count, "MPI_Reduce_scatter_block")
        timed(.reduceScatter, bytes: ByteAccounting.allreduce(count: count, elementSize: 4)) {
            if UnsafePointer(recv) != send { recv.update(from: send, count: count) }
        }
    }

    public func alltoallv(send: UnsafePointer<Float>, sendCounts: [Int], sendDispls: [Int],
                          recv: UnsafeMutablePointer<Float>, recvCounts: [Int], recvDispls: [Int]) throws {
        let call = "MPI_Alltoallv"
        try Validate.vector(counts: sendCounts, displs: sendDispls, size: 1, side: "send", call)
        try Validate.vector(counts: recvCounts, displs: recvDispls, size: 1, side: "recv", call)
        guard sendCounts[0] == recvCounts[0] else {
            throw CommError.invalidArgument(call, "sendCounts[0] = \(sendCounts[0]) != recvCounts[0] = \(recvCounts[0])")
        }
        timed(.alltoallv, bytes: 0) {
            (recv + recvDispls[0]).update(from: send + sendDispls[0], count: sendCounts[0])
        }
    }

    public func broadcast(_ buf: UnsafeMutableRawPointer, bytes: Int, root: Int) throws {
        try Validate.count(bytes, "MPI_Bcast")
        try Validate.root(root, size: 1, "MPI_Bcast")
        stats.record(.broadcast, bytes: ByteAccounting.broadcast(bytes: bytes, root: root, rank: 0), seconds: 0)
    }

    public func barrier() throws {
        stats.record(.barrier, bytes: 0, seconds: 0)
    }

    public func abort(_ message: String, code: Int32) -> Never {
        writeStandardError("rank 0: \(message)\n")
        exit(code == 0 ? 1 : code)
    }
}

/// A request that was complete when it was created.
final class CompletedRequest: CommRequest {
    var isComplete: Bool { true }
    func wait() throws {}
    func test() throws -> Bool { true }
}
