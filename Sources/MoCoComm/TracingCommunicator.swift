/// A `Communicator` that forwards every call to another and records each collective on a
/// `Timeline` (`--timeline`): blocking collectives as spans on the collectives lane, from the
/// call to its return; each non-blocking allreduce on a lane of its own among those in flight,
/// from the call that started it to the `test()` or `wait()` that first saw it complete (Open
/// MPI has no progress thread, so that is when this rank can know; MPI 3.1 §5.12).
///
/// Being a decorator, it changes no value and no order of calls: a traced run is bitwise the
/// run without it. The agreement and helper collectives (`agree`, typed allreduce, broadcast of
/// strings) are built on these calls and so are traced too.
public final class TracingCommunicator: Communicator {
    public let inner: Communicator
    public let timeline: Timeline
    /// Lanes of the non-blocking allreduces in flight: true while taken.
    private var lanesTaken: [Bool] = []

    public init(_ inner: Communicator, timeline: Timeline) {
        self.inner = inner; self.timeline = timeline
    }

    public var rank: Int { inner.rank }
    public var size: Int { inner.size }
    public var stats: CommStats { inner.stats }
    public func resetStats() { inner.resetStats() }
    public var watchdog: Watchdog? {
        get { inner.watchdog }
        set { inner.watchdog = newValue }
    }
    public func abort(_ message: String, code: Int32) -> Never {
        timeline.close()
        inner.abort(message, code: code)
    }

    /// Runs one blocking collective and records it, also when it throws.
    private func traced<T>(_ name: String, bytes: Int, _ body: () throws -> T) rethrows -> T {
        let t0 = MonotonicClock.now()
        defer { timeline.span(name, category: "comm", lane: .collectives, start: t0, end: MonotonicClock.now(),
                              args: [("bytes", .int(bytes))]) }
        return try body()
    }

    public func allreduce(_ buf: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp) throws {
        try traced("allreduce", bytes: count * 4) { try inner.allreduce(buf, count: count, op: op) }
    }
    public func allreduce(_ buf: UnsafeMutablePointer<Double>, count: Int, op: ReduceOp) throws {
        try traced("allreduce", bytes: count * 8) { try inner.allreduce(buf, count: count, op: op) }
    }
    public func allreduce(_ buf: UnsafeMutablePointer<Int64>, count: Int, op: ReduceOp) throws {
        try traced("allreduce", bytes: count * 8) { try inner.allreduce(buf, count: count, op: op) }
    }

    public func iallreduce(_ buf: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp) throws -> CommRequest {
        let t0 = MonotonicClock.now()
        let request = try inner.iallreduce(buf, count: count, op: op)
        let lane = lanesTaken.firstIndex(of: false) ?? lanesTaken.count
        if lane == lanesTaken.count { lanesTaken.append(true) } else { lanesTaken[lane] = true }
        return TracedRequest(request, owner: self, lane: lane, start: t0, bytes: count * 4)
    }

    /// A traced request saw its operation complete at `end`.
    fileprivate func completed(lane: Int, start: Double, end: Double, bytes: Int) {
        lanesTaken[lane] = false
        timeline.span("iallreduce", category: "comm", lane: .bucket, offset: lane, start: start, end: end,
                      args: [("bytes", .int(bytes))])
    }

    public func allgather(_ send: UnsafePointer<Float>, count: Int, into recv: UnsafeMutablePointer<Float>) throws {
        try traced("allgather", bytes: count * 4) { try inner.allgather(send, count: count, into: recv) }
    }
    public func allgather(bytes send: UnsafeRawPointer, count: Int, into recv: UnsafeMutableRawPointer) throws {
        try traced("allgather", bytes: count) { try inner.allgather(bytes: send, count: count, into: recv) }
    }
    public func allgatherv(_ send: UnsafePointer<Float>, count: Int, into recv: UnsafeMutablePointer<Float>,
                           counts: [Int]) throws {
        try traced("allgatherv", bytes: count * 4) { try inner.allgatherv(send, count: count, into: recv, counts: counts) }
    }
    public func reduceScatter(_ send: UnsafePointer<Float>, count: Int, into recv: UnsafeMutablePointer<Float>,
                              op: ReduceOp) throws {
        try traced("reduce_scatter", bytes: size * count * 4) { try inner.reduceScatter(send, count: count, into: recv, op: op) }
    }
    public func alltoallv(send: UnsafePointer<Float>, sendCounts: [Int], sendDispls: [Int],
                          recv: UnsafeMutablePointer<Float>, recvCounts: [Int], recvDispls: [Int]) throws {
        let bytes = 4 * (sendCounts.reduce(0, +) - (rank < sendCounts.count ? sendCounts[rank] : 0))
        try traced("alltoallv", bytes: bytes) {
            try inner.alltoallv(send: send, sendCounts: sendCounts, sendDispls: sendDispls,
                                recv: recv, recvCounts: recvCounts, recvDispls: recvDispls)
        }
    }
    public func broadcast(_ buf: UnsafeMutableRawPointer, bytes: Int, root: Int) throws {
        try traced("broadcast", bytes: rank == root ? bytes : 0) { try inner.broadcast(buf, bytes: bytes, root: root) }
    }
    public func barrier() throws {
        try traced("barrier", bytes: 0) { try inner.barrier() }
    }
}

/// A non-blocking allreduce of a `TracingCommunicator`: reports its completion once.
final class TracedRequest: CommRequest {
    private let inner: CommRequest
    private let owner: TracingCommunicator
    private let lane: Int, start: Double, bytes: Int
    private var reported = false

    init(_ inner: CommRequest, owner: TracingCommunicator, lane: Int, start: Double, bytes: Int) {
        self.inner = inner; self.owner = owner; self.lane = lane; self.start = start; self.bytes = bytes
    }

    var isComplete: Bool { inner.isComplete }

    func wait() throws {
        try inner.wait()
        report()
    }

    func test() throws -> Bool {
        let done = try inner.test()
        if done { report() }
        return done
    }

    private func report() {
        guard !reported else { return }
        reported = true
        owner.completed(lane: lane, start: start, end: MonotonicClock.now(), bytes: bytes)
    }

    deinit {
        // Dropped unwaited: the inner request's deinit waits; free the lane all the same.
        if !reported { owner.completed(lane: lane, start: start, end: MonotonicClock.now(), bytes: bytes) }
    }
}
