import CMPIShim
import Foundation

/// The world of an MPI job (MPI_COMM_WORLD), for processes launched by mpirun.
///
/// Collectives run on a private duplicate of MPI_COMM_WORLD (MPI_Comm_dup, MPI 3.1 §6.4.2), so
/// their messages can never match those of other code using the world communicator (MPI 3.1 §6.1,
/// "safe communication space"). Both communicators use MPI_ERRORS_RETURN (MPI 3.1 §8.3), so every
/// failing MPI call becomes a thrown `CommError` naming the call instead of killing the job.
///
/// There is one instance per process: `initialize()` returns the same object until `finalize()`.
public final class MPICommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    /// The thread level MPI provided (at least MPI_THREAD_FUNNELED).
    public let threadLevel: MPIThreadLevel
    public private(set) var stats: CommStats

    /// The duplicated world communicator all collectives use.
    let comm: MPI_Comm
    /// A second duplicate, only for the watchdog's report after a timeout, so its messages
    /// cannot match anything of a collective left pending on `comm`.
    let watchComm: MPI_Comm
    /// When set, every collective runs as its non-blocking form and is polled against
    /// `watchdog.timeout` (`collectiveTimedOut`); nil: plain blocking calls.
    public var watchdog: Watchdog?
    /// The same communicator for raw MPI calls next to the protocol's (`moco bench comm`
    /// compares the two on the same buffers); nothing else calls MPI outside this module.
    public var rawHandle: MPI_Comm { comm }
    /// False when MPI was initialised by someone else; `finalize()` then leaves MPI running.
    private let ownsMPI: Bool
    private(set) var isFinalized = false
    /// The progress thread's interval in microseconds once `startProgressThread` ran; nil: none.
    public private(set) var progressInterval: Int?
    /// A third duplicate, probed by the progress thread; no message is ever sent on it.
    private var progressComm: MPI_Comm?
    /// Non-blocking collectives started and not yet known complete; the progress thread polls
    /// while this is above zero.
    private var pending = 0

    private static let lock = NSLock()
    nonisolated(unsafe) private static var shared: MPICommunicator?

    private init(comm: MPI_Comm, watchComm: MPI_Comm, rank: Int, size: Int, threadLevel: MPIThreadLevel, ownsMPI: Bool) {
        self.comm = comm
        self.watchComm = watchComm
        self.rank = rank
        self.size = size
        self.threadLevel = threadLevel
        self.ownsMPI = ownsMPI
        self.stats = CommStats(worldSize: size)
    }

    /// Initialises MPI (MPI_Init_thread asking for MPI_THREAD_SERIALIZED, MPI 3.1 §12.4.3) and
    /// returns the world communicator. Requires a provided level of at least MPI_THREAD_FUNNELED,
    /// i.e. the program may call MPI from the initialising thread. Calling it again returns the
    /// same instance; after `finalize()` it throws, because MPI cannot be re-initialised
    /// (MPI 3.1 §8.7). If MPI was already initialised by other code, it is reused as is.
    public static func initialize() throws -> MPICommunicator {
        lock.lock()
        defer { lock.unlock() }
        if let existing = shared { return existing }

        var finalized: Int32 = 0
        try checkMPI(MPI_Finalized(&finalized), "MPI_Finalized")
        if finalized != 0 { throw CommError.unavailable("MPI has been finalized and cannot be re-initialized") }

        var initialized: Int32 = 0
        try checkMPI(MPI_Initialized(&initialized), "MPI_Initialized")
        var provided: Int32 = 0
        let ownsMPI = initialized == 0
        if ownsMPI {
            // Open MPI's non-blocking allreduce (coll/libnbc) picks, by default, a binomial
            // reduce-then-broadcast for in-place buffers (ours) and for fewer than 4 ranks: one
            // rank receives everything, then sends the sum back, 2·log2(W)·S/BW on the link where
            // a ring takes 2(W-1)/W·S/BW in both directions at once (on shaped 200 Mb/s links a
            // 1 MB gradient bucket took 86 ms instead of 43; docs/performance.md, "The model on
            // shaped links"). Ask for its ring unless the user chose (MCA parameters are read
            // from the environment at initialisation).
            setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", 0)
            // Errors in MPI_Init_thread itself are fatal by default (MPI 3.1 §8.3); the code is
            // checked anyway for implementations that return.
            try checkMPI(MPI_Init_thread(nil, nil, MPIThreadLevel.serialized.mpiValue, &provided),
                         "MPI_Init_thread")
        } else {
            try checkMPI(MPI_Query_thread(&provided), "MPI_Query_thread")
        }
        let level = MPIThreadLevel(mpi: provided)
        guard level >= .funneled else {
            throw CommError.unavailable("MPI provides only \(level); at least MPI_THREAD_FUNNELED is required")
        }

        let world = moco_comm_world()
        try checkMPI(MPI_Comm_set_errhandler(world, moco_errors_return()), "MPI_Comm_set_errhandler")
        let comm = try duplicate(world)
        let watchComm = try duplicate(world)

        var rank: Int32 = 0, size: Int32 = 0
        try checkMPI(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank")
        try checkMPI(MPI_Comm_size(comm, &size), "MPI_Comm_size")

        let instance = MPICommunicator(comm: comm, watchComm: watchComm, rank: Int(rank), size: Int(size),
                                       threadLevel: level, ownsMPI: ownsMPI)
        shared = instance
        return instance
    }

    /// A duplicate of `c` (MPI_Comm_dup, MPI 3.1 §6.4.2) that returns its errors (MPI_ERRORS_RETURN).
    private static func duplicate(_ c: MPI_Comm?) throws -> MPI_Comm {
        var dup: MPI_Comm? = nil
        try checkMPI(MPI_Comm_dup(c, &dup), "MPI_Comm_dup")
        guard let d = dup else { throw CommError.unavailable("MPI_Comm_dup returned no communicator") }
        try checkMPI(MPI_Comm_set_errhandler(d, moco_errors_return()), "MPI_Comm_set_errhandler")
        return d
    }

    /// Frees the duplicated communicator and calls MPI_Finalize (MPI 3.1 §8.7), which is itself
    /// collective: every rank must call it, after completing all its requests. Idempotent.
    public func finalize() {
        Self.lock.lock()
        defer { Self.lock.unlock() }
        guard !isFinalized else { return }
        isFinalized = true
        if progressInterval != nil {
            moco_progress_stop()
            var p: MPI_Comm? = progressComm
            _ = MPI_Comm_free(&p)
        }
        var c: MPI_Comm? = comm
        _ = MPI_Comm_free(&c)
        var w: MPI_Comm? = watchComm
        _ = MPI_Comm_free(&w)
        if ownsMPI { _ = MPI_Finalize() }
    }

    public func resetStats() { stats = CommStats(worldSize: size) }

    // MARK: - Progress thread

    /// Starts a thread that drives MPI's progress every `intervalMicroseconds` while a
    /// non-blocking collective (the gradient buckets' allreduces) is pending, so that it moves
    /// while the backward pass computes. Open MPI advances non-blocking collectives only inside
    /// MPI calls (its TCP and shared-memory transports have no progress thread of their own);
    /// without this, a bucket moves only when the training thread tests it between layers.
    /// Needs MPI_THREAD_SERIALIZED: from here on every MPI call of the process holds one lock.
    public func startProgressThread(intervalMicroseconds: Int) throws {
        try ensureActive("startProgressThread")
        guard progressInterval == nil else { return }
        guard intervalMicroseconds > 0 else {
            throw CommError.invalidArgument("startProgressThread", "the interval must be positive (got \(intervalMicroseconds) us)")
        }
        guard threadLevel >= .serialized else {
            throw CommError.unavailable("a progress thread needs MPI_THREAD_SERIALIZED; MPI provides only \(threadLevel)")
        }
        let pc = try Self.duplicate(comm)
        let rc = moco_progress_start(pc, intervalMicroseconds)
        guard rc == 0 else {
            var p: MPI_Comm? = pc
            _ = MPI_Comm_free(&p)
            throw CommError.unavailable("could not start the MPI progress thread (pthread_create error \(rc))")
        }
        progressComm = pc
        progressInterval = intervalMicroseconds
    }

    /// MPI_Iprobe calls the progress thread has made (0 without one).
    public var progressPolls: Int { Int(moco_progress_polls()) }

    /// Runs `body`, which calls MPI, holding the process's MPI lock when a progress thread exists.
    @inline(__always)
    func mpi<T>(_ body: () throws -> T) rethrows -> T {
        guard progressInterval != nil else { return try body() }
        moco_mpi_lock()
        defer { moco_mpi_unlock() }
        return try body()
    }

    /// A non-blocking collective started (+1) or was found complete (-1).
    func pendingChanged(by delta: Int) {
        pending += delta
        if progressInterval != nil { moco_progress_set_active(pending > 0 ? 1 : 0) }
    }

    // MARK: - Plumbing

    private func ensureActive(_ call: String) throws {
        if isFinalized { throw CommError.unavailable("\(call) after MPICommunicator.finalize()") }
    }

    /// Runs one collective, checks its return code and records it in `stats`: the blocking call,
    /// or, with a watchdog, the non-blocking one (`start`, MPI 3.1 §5.12) polled to completion
    /// against the timeout.
    @inline(__always)
    private func run(_ kind: CollectiveKind, _ call: StaticString, bytes: Int, _ blocking: () -> Int32,
                     nonblocking start: (inout MPI_Request?) -> Int32) throws {
        try ensureActive("\(call)")
        let t0 = MonotonicClock.now()
        if let w = watchdog {
            var request: MPI_Request? = moco_request_null()
            try checkMPI(mpi { start(&request) }, call)
            try poll(&request, call: "\(call)", watchdog: w)
        } else {
            try checkMPI(mpi { blocking() }, call)
        }
        stats.record(kind, bytes: bytes, seconds: MonotonicClock.now() - t0)
    }

    /// Drives `request` to completion with MPI_Test (MPI 3.1 §3.7.3), as MPI_Wait would, but
    /// yields the core between tests and ends the job once `watchdog.timeout` seconds pass
    /// (not counting a suspension of this process, `Watchdog.suspensionGap`).
    func poll(_ request: inout MPI_Request?, call: String, watchdog w: Watchdog) throws {
        var previous = MonotonicClock.now()
        var deadline = previous + w.timeout
        var flag: Int32 = 0
        while true {
            let code = mpi { moco_test(&request, &flag) }
            if code != moco_success() { throw CommError.mpi(call: "MPI_Test(\(call))", code: code) }
            if flag != 0 { w.progressed(); return }
            let now = MonotonicClock.now()
            // Tests are microseconds apart: a longer gap is this process suspended (Watchdog).
            if now - previous > Watchdog.suspensionGap { deadline += now - previous }
            previous = now
            if now > deadline { collectiveTimedOut(call, watchdog: w) }
            // Let a rank that shares this core compute (oversubscribed runs); costs ~1 us when
            // nothing else is runnable, as Open MPI's own yield_when_idle.
            sched_yield()
        }
    }

    /// The exit status of a job ended by the watchdog (as timeout(1) uses).
    public static let timeoutExitCode: Int32 = 124

    /// A collective did not complete in time: find out who is missing, then end the job.
    ///
    /// Every rank that times out sends what it waits in to rank 0 on `watchComm`; rank 0 collects
    /// for `reportWindow` seconds, acknowledging each, and aborts the job naming the ranks that
    /// did not report (stalled, dead, or in another operation). A rank without an answer from
    /// rank 0 within the window aborts naming rank 0. Only point-to-point calls on a separate
    /// communicator are used, so the pending collective cannot interfere.
    func collectiveTimedOut(_ call: String, watchdog w: Watchdog) -> Never {
        if progressInterval != nil { moco_progress_stop() }   // only this thread calls MPI from here on
        let what = "\(call) in \(w.activity)"
        let limit = String(format: "%.0f s", w.timeout)
        let tag: Int32 = 7001, ackTag: Int32 = 7002
        guard size > 1 else { abort("\(what) did not complete within \(limit)", code: Self.timeoutExitCode) }
        let window = w.reportWindow
        if rank == 0 {
            var reports: [Int: String] = [:]
            var acks: [MPI_Request?] = []
            var one: UInt8 = 1
            let end = MonotonicClock.now() + window
            while MonotonicClock.now() < end && reports.count < size - 1 {
                var flag: Int32 = 0, source: Int32 = 0, count: Int32 = 0
                guard moco_iprobe_any(tag, watchComm, &flag, &source, &count) == moco_success() else { break }
                guard flag != 0 else { usleep(1000); continue }
                var buffer = [UInt8](repeating: 0, count: max(Int(count), 1))
                _ = moco_recv_bytes(&buffer, count, source, tag, watchComm)
                reports[Int(source)] = String(decoding: buffer.prefix(Int(count)), as: UTF8.self)
                var ack: MPI_Request? = moco_request_null()
                _ = moco_isend_bytes(&one, 1, source, ackTag, watchComm, &ack)
                acks.append(ack)
            }
            let missing = (1..<size).filter { reports[$0] == nil }
            var message = "collective timeout: \(what) did not complete within \(limit) (--collective-timeout)"
            for r in reports.keys.sorted() { message += "; rank \(r) waits in \(reports[r]!)" }
            message += missing.isEmpty
                ? "; every rank is waiting (mismatched collectives or a failed network)"
                : String(format: "; rank(s) %@ did not report within %.1f s: stalled, dead, or in another operation",
                         missing.map(String.init).joined(separator: ", "), window)
            abort(message, code: Self.timeoutExitCode)
        }
        var text = Array(what.utf8.prefix(512))
        var send: MPI_Request? = moco_request_null(), recv: MPI_Request? = moco_request_null()
        var ack: UInt8 = 0
        _ = moco_isend_bytes(&text, Int32(text.count), 0, tag, watchComm, &send)
        _ = moco_irecv_bytes(&ack, 1, 0, ackTag, watchComm, &recv)
        var flag: Int32 = 0
        let end = MonotonicClock.now() + window + 1
        while MonotonicClock.now() < end {
            guard moco_test(&recv, &flag) == moco_success(), flag == 0 else { break }
            usleep(1000)
        }
        if flag != 0 {
            // Rank 0 is alive and ends the job with the full report; give it the time to.
            Thread.sleep(forTimeInterval: window + 2)
            abort("collective timeout: \(what) did not complete within \(limit); rank 0 did not end the job", code: Self.timeoutExitCode)
        }
        abort(String(format: "collective timeout: %@ did not complete within %@ (--collective-timeout); rank 0 did not answer within %.1f s: stalled, dead, or in another operation",
                     what, limit, window + 1), code: Self.timeoutExitCode)
    }

    func recordWait(_ kind: CollectiveKind, seconds: Double) { stats.addSeconds(kind, seconds) }

    private func allreduceGeneric<T: MPIElement>(_ buf: UnsafeMutablePointer<T>, count: Int, op: ReduceOp) throws {
        try Validate.count(count, "MPI_Allreduce")
        let bytes = ByteAccounting.allreduce(count: count, elementSize: MemoryLayout<T>.stride)
        try run(.allreduce, "MPI_Allreduce", bytes: bytes, {
            MPI_Allreduce(moco_in_place(), buf, Int32(count), T.mpiType, op.mpiOp, comm)
        }, nonblocking: { MPI_Iallreduce(moco_in_place(), buf, Int32(count), T.mpiType, op.mpiOp, comm, &$0) })
    }

    // MARK: - Communicator

    public func allreduce(_ buf: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp) throws {
        try allreduceGeneric(buf, count: count, op: op)
    }

    public func allreduce(_ buf: UnsafeMutablePointer<Double>, count: Int, op: ReduceOp) throws {
        try allreduceGeneric(buf, count: count, op: op)
    }

    public func allreduce(_ buf: UnsafeMutablePointer<Int64>, count: Int, op: ReduceOp) throws {
        try allreduceGeneric(buf, count: count, op: op)
    }

    public func iallreduce(_ buf: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp) throws -> CommRequest {
        try Validate.count(count, "MPI_Iallreduce")
        // The request *handle* is an opaque value: MPI does not retain the address of `request`
        // (MPI 3.1 §3.7.1), so a local is fine. The *buffer* is retained until completion.
        var request: MPI_Request? = moco_request_null()
        try ensureActive("MPI_Iallreduce")
        let start = MonotonicClock.now()
        let code = mpi { MPI_Iallreduce(moco_in_place(), buf, Int32(count), moco_type_float(), op.mpiOp, comm, &request) }
        stats.record(.iallreduce, bytes: ByteAccounting.allreduce(count: count, elementSize: 4), seconds: MonotonicClock.now() - start)
        try checkMPI(code, "MPI_Iallreduce")
        pendingChanged(by: 1)
        return MPIRequest(owner: self, kind: .iallreduce, call: "MPI_Iallreduce", handle: request)
    }

    public func allgather(_ send: UnsafePointer<Float>, count: Int, into recv: UnsafeMutablePointer<Float>) throws {
        try Validate.count(count, "MPI_Allgather")
        try run(.allgather, "MPI_Allgather", bytes: ByteAccounting.allgather(count: count, elementSize: 4), {
            MPI_Allgather(send, Int32(count), moco_type_float(), recv, Int32(count), moco_type_float(), comm)
        }, nonblocking: { MPI_Iallgather(send, Int32(count), moco_type_float(), recv, Int32(count), moco_type_float(), comm, &$0) })
    }

    public func allgather(bytes send: UnsafeRawPointer, count: Int, into recv: UnsafeMutableRawPointer) throws {
        try Validate.count(count, "MPI_Allgather")
        try Validate.count(count * size, "MPI_Allgather")
        try run(.allgather, "MPI_Allgather", bytes: count, {
            MPI_Allgather(send, Int32(count), moco_type_byte(), recv, Int32(count), moco_type_byte(), comm)
        }, nonblocking: { MPI_Iallgather(send, Int32(count), moco_type_byte(), recv, Int32(count), moco_type_byte(), comm, &$0) })
    }

    public func allgatherv(_ send: UnsafePointer<Float>, count: Int, into recv: UnsafeMutablePointer<Float>,
                           counts: [Int]) throws {
        let (displs, _) = try Validate.allgathervCounts(counts, count: count, rank: rank, size: size, "MPI_Allgatherv")
        let c32 = counts.int32s, d32 = displs.int32s
        try run(.allgatherv, "MPI_Allgatherv", bytes: ByteAccounting.allgather(count: count, elementSize: 4), {
            MPI_Allgatherv(send, Int32(count), moco_type_float(), recv, c32, d32, moco_type_float(), comm)
        }, nonblocking: { MPI_Iallgatherv(send, Int32(count), moco_type_float(), recv, c32, d32, moco_type_float(), comm, &$0) })
    }

    public func reduceScatter(_ send: UnsafePointer<Float>, count: Int, into recv: UnsafeMutablePointer<Float>,
                              op: ReduceOp) throws {
        try Validate.count(count, "MPI_Reduce_scatter_block")
        try Validate.count(count * size, "MPI_Reduce_scatter_block")
        try run(.reduceScatter, "MPI_Reduce_scatter_block", bytes: ByteAccounting.allreduce(count: count * size, elementSize: 4), {
            MPI_Reduce_scatter_block(send, recv, Int32(count), moco_type_float(), op.mpiOp, comm)
        }, nonblocking: { MPI_Ireduce_scatter_block(send, recv, Int32(count), moco_type_float(), op.mpiOp, comm, &$0) })
    }

    public func alltoallv(send: UnsafePointer<Float>, sendCounts: [Int], sendDispls: [Int],
                          recv: UnsafeMutablePointer<Float>, recvCounts: [Int], recvDispls: [Int]) throws {
        let call = "MPI_Alltoallv"
        try Validate.vector(counts: sendCounts, displs: sendDispls, size: size, side: "send", call)
        try Validate.vector(counts: recvCounts, displs: recvDispls, size: size, side: "recv", call)
        let sc = sendCounts.int32s, sd = sendDispls.int32s, rc = recvCounts.int32s, rd = recvDispls.int32s
        let bytes = ByteAccounting.alltoallv(sendCounts: sendCounts, rank: rank, elementSize: 4)
        try run(.alltoallv, "MPI_Alltoallv", bytes: bytes, {
            MPI_Alltoallv(send, sc, sd, moco_type_float(), recv, rc, rd, moco_type_float(), comm)
        }, nonblocking: { MPI_Ialltoallv(send, sc, sd, moco_type_float(), recv, rc, rd, moco_type_float(), comm, &$0) })
    }

    public func broadcast(_ buf: UnsafeMutableRawPointer, bytes: Int, root: Int) throws {
        try Validate.count(bytes, "MPI_Bcast")
        try Validate.root(root, size: size, "MPI_Bcast")
        let sent = ByteAccounting.broadcast(bytes: bytes, root: root, rank: rank)
        try run(.broadcast, "MPI_Bcast", bytes: sent, {
            MPI_Bcast(buf, Int32(bytes), moco_type_byte(), Int32(root), comm)
        }, nonblocking: { MPI_Ibcast(buf, Int32(bytes), moco_type_byte(), Int32(root), comm, &$0) })
    }

    public func barrier() throws {
        try run(.barrier, "MPI_Barrier", bytes: 0, { MPI_Barrier(comm) }, nonblocking: { MPI_Ibarrier(comm, &$0) })
    }

    public func abort(_ message: String, code: Int32) -> Never {
        writeStandardError("rank \(rank): \(message)\n")
        let status = code == 0 ? 1 : code
        // MPI_Abort on MPI_COMM_WORLD terminates all processes of the job (MPI 3.1 §8.7); Open MPI's
        // mpirun then exits with a non-zero status.
        _ = MPI_Abort(moco_comm_world(), status)
        exit(status)
    }
}
