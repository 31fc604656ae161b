import CMPIShim

/// A pending MPI non-blocking collective (MPI 3.1 §5.12).
///
/// If the request is dropped without `wait()`, `deinit` waits for it: MPI may still be writing the
/// caller's buffer, and MPI_Request_free / MPI_Cancel on a non-blocking collective request are
/// erroneous (MPI 3.1 §5.12), so waiting is the only correct way out. Always call `wait()`
/// explicitly; the deinit path is a safety net and cannot report errors.
final class MPIRequest: CommRequest, @unchecked Sendable {
    private let owner: MPICommunicator
    private let kind: CollectiveKind
    private let call: String
    private var handle: MPI_Request?
    private(set) var isComplete = false

    init(owner: MPICommunicator, kind: CollectiveKind, call: String, handle: MPI_Request?) {
        self.owner = owner
        self.kind = kind
        self.call = call
        self.handle = handle
    }

    func wait() throws {
        guard !isComplete else { return }
        if owner.isFinalized { throw CommError.unavailable("\(call) request waited after finalize()") }
        let start = MonotonicClock.now()
        var h = handle
        if let w = owner.watchdog {
            defer { handle = h }
            try owner.poll(&h, call: call, watchdog: w)
            owner.recordWait(kind, seconds: MonotonicClock.now() - start)
            completed()
            return
        }
        let code = owner.mpi { moco_wait(&h) }
        handle = h
        owner.recordWait(kind, seconds: MonotonicClock.now() - start)
        if code != moco_success() { throw CommError.mpi(call: "MPI_Wait(\(call))", code: code) }
        completed()
    }

    func test() throws -> Bool {
        guard !isComplete else { return true }
        if owner.isFinalized { throw CommError.unavailable("\(call) request tested after finalize()") }
        var h = handle
        var flag: Int32 = 0
        let code = owner.mpi { moco_test(&h, &flag) }
        handle = h
        if code != moco_success() { throw CommError.mpi(call: "MPI_Test(\(call))", code: code) }
        if flag != 0 { completed() }
        return isComplete
    }

    private func completed() {
        isComplete = true
        owner.pendingChanged(by: -1)
    }

    deinit {
        if !isComplete && !owner.isFinalized {
            var h = handle
            _ = owner.mpi { moco_wait(&h) }
            owner.pendingChanged(by: -1)
        }
    }
}
