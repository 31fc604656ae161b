/// A pending non-blocking collective (MPI 3.1 §5.12).
public protocol CommRequest: AnyObject {
    /// Blocks until the operation is complete; afterwards its buffer may be read and reused.
    /// Calling it again is a no-op (a completed request is inactive, MPI 3.1 §3.7.3).
    func wait() throws
    /// True once `wait()` (or a `test()` that returned true) has completed the request.
    var isComplete: Bool { get }
    /// Lets the library progress the operation without blocking (MPI_Test, MPI 3.1 §3.7.3) and
    /// returns whether it is complete. Open MPI advances non-blocking collectives only inside MPI
    /// calls, so calling this between pieces of computation is what makes communication overlap.
    func test() throws -> Bool
}

/// The one interface the rest of swift-moco uses for communication between ranks.
///
/// Collective semantics follow MPI 3.1 chapter 5: every rank of the world must make the same
/// sequence of collective calls with matching arguments (counts, root, op), otherwise the program
/// is erroneous and typically hangs. Arguments are validated locally before any message is sent;
/// such an error is thrown only on the rank with the bad arguments, so code that may fail on a
/// subset of ranks should call `agree(_:)` first.
///
/// Pointers are borrowed for the duration of the call only, except for `iallreduce`, whose buffer
/// must stay valid and untouched until `wait()` returns (MPI 3.1 §5.12).
///
/// Thread safety: one thread at a time (Open MPI is initialised with at least
/// MPI_THREAD_FUNNELED; see `MPICommunicator.threadLevel`).
public protocol Communicator: AnyObject {
    /// This process's rank in the world, `0..<size`.
    var rank: Int { get }
    /// Number of ranks in the world.
    var size: Int { get }
    /// Counters since creation or the last `resetStats()`.
    var stats: CommStats { get }
    func resetStats()

    /// In-place allreduce (MPI_Allreduce with MPI_IN_PLACE, MPI 3.1 §5.9.6): on return every rank's
    /// `buf[0..<count]` holds the elementwise reduction over all ranks.
    func allreduce(_ buf: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp) throws
    func allreduce(_ buf: UnsafeMutablePointer<Double>, count: Int, op: ReduceOp) throws
    func allreduce(_ buf: UnsafeMutablePointer<Int64>, count: Int, op: ReduceOp) throws

    /// Starts an in-place allreduce (MPI_Iallreduce, MPI 3.1 §5.12.8) and returns at once. The
    /// buffer must outlive the request and not be accessed until `wait()` returns. All ranks must
    /// start their non-blocking collectives in the same order; they may be waited in any order.
    func iallreduce(_ buf: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp) throws -> CommRequest

    /// MPI_Allgather (MPI 3.1 §5.7): every rank contributes `count` floats; `recv` (size*count)
    /// receives the contributions in rank order.
    func allgather(_ send: UnsafePointer<Float>, count: Int, into recv: UnsafeMutablePointer<Float>) throws

    /// Byte-wise allgather: every rank contributes `count` bytes; `recv` gets size*count bytes.
    func allgather(bytes send: UnsafeRawPointer, count: Int, into recv: UnsafeMutableRawPointer) throws

    /// MPI_Allgatherv (MPI 3.1 §5.7): rank r contributes `counts[r]` floats (`count` must equal
    /// `counts[rank]`); `recv` receives them contiguously in rank order (sum(counts) floats).
    func allgatherv(_ send: UnsafePointer<Float>, count: Int, into recv: UnsafeMutablePointer<Float>,
                    counts: [Int]) throws

    /// MPI_Reduce_scatter_block (MPI 3.1 §5.10.1): every rank passes `send` of size·count
    /// floats; rank r receives in `recv` (count floats) the elementwise reduction over all ranks
    /// of block r, `send[r·count ..< (r+1)·count]`. The adjoint of `allgather`: the gradient of
    /// gathered rows goes back, summed, to the rank that contributed them.
    func reduceScatter(_ send: UnsafePointer<Float>, count: Int, into recv: UnsafeMutablePointer<Float>,
                       op: ReduceOp) throws

    /// MPI_Alltoallv (MPI 3.1 §5.8): block j of `send` (`sendCounts[j]` floats at `sendDispls[j]`)
    /// goes to rank j; the block from rank i lands at `recv + recvDispls[i]` (`recvCounts[i]`
    /// floats). Counts and displacements are in floats; `recvCounts[i]` must equal rank i's
    /// `sendCounts[rank]`. Parts of `recv` not covered by a block are left untouched.
    func alltoallv(send: UnsafePointer<Float>, sendCounts: [Int], sendDispls: [Int],
                   recv: UnsafeMutablePointer<Float>, recvCounts: [Int], recvDispls: [Int]) throws

    /// MPI_Bcast (MPI 3.1 §5.4): `bytes` bytes from `root`'s buffer to every rank's buffer.
    func broadcast(_ buf: UnsafeMutableRawPointer, bytes: Int, root: Int) throws

    /// MPI_Barrier (MPI 3.1 §5.3): returns only after every rank has entered it.
    func barrier() throws

    /// Ends the job when a collective (or, by its backstop, anything) stalls; nil: no timeout.
    var watchdog: Watchdog? { get set }

    /// Prints `rank R: message` to stderr and terminates every rank (MPI_Abort on the world,
    /// MPI 3.1 §8.7), with `code` as the exit status where the launcher propagates it.
    func abort(_ message: String, code: Int32) -> Never
}
