import Foundation

/// Keeps a stalled rank from leaving its peers waiting forever (`moco train --collective-timeout`).
///
/// Two mechanisms, both off when there is no watchdog:
/// - `MPICommunicator` runs every collective as its non-blocking form and polls it (MPI_Test);
///   one that does not complete within `timeout` seconds ends the job from the waiting rank,
///   after a short report round that names the ranks that are not waiting with it
///   (`MPICommunicator.collectiveTimedOut`).
/// - A backstop thread: when nothing has progressed (no `beat`, no completed collective) for
///   `timeout + backstopGrace` seconds, e.g. a single process stuck in a hung read, or a rank
///   stuck inside MPI itself, it prints what the process was doing and calls `onExpiry`.
///
/// `beat(_:)` names what the process does next ("step 12", "kNN evaluation"), for the messages.
public final class Watchdog: @unchecked Sendable {
    /// Seconds a collective may take.
    public let timeout: Double
    /// How long rank 0 collects the other ranks' reports after a timeout, before ending the job.
    public var reportWindow: Double { min(5, max(1, timeout / 4)) }
    /// Extra time before the backstop fires, so a collective's own timeout (with its report) wins.
    public var backstopGrace: Double { max(5, timeout / 2) }

    private let lock = NSLock()
    private var label = "start-up"
    private var last = MonotonicClock.now()
    private var thread: Thread?
    private let onExpiry: @Sendable (String) -> Void

    /// - Parameter onExpiry: called on the backstop thread with the message; it must end the
    ///   process (e.g. `Communicator.abort`).
    public init(timeout: Double, onExpiry: @escaping @Sendable (String) -> Void) {
        precondition(timeout > 0)
        self.timeout = timeout
        self.onExpiry = onExpiry
    }

    /// Marks progress and names the activity that follows.
    public func beat(_ activity: String) {
        lock.lock(); label = activity; last = MonotonicClock.now(); lock.unlock()
    }

    /// Marks progress (a collective completed) without changing the activity.
    public func progressed() {
        lock.lock(); last = MonotonicClock.now(); lock.unlock()
    }

    /// The current activity.
    public var activity: String { lock.lock(); defer { lock.unlock() }; return label }

    /// Starts the backstop thread (once).
    public func start() {
        lock.lock(); defer { lock.unlock() }
        guard thread == nil else { return }
        let t = Thread { [unowned self] in self.watch() }
        t.name = "moco-watchdog"
        thread = t
        t.start()
    }

    private func watch() {
        let limit = timeout + backstopGrace
        while true {
            Thread.sleep(forTimeInterval: min(1, limit / 10))
            lock.lock()
            let idle = MonotonicClock.now() - last, what = label
            lock.unlock()
            if idle > limit {
                onExpiry(String(format: "watchdog: no progress for %.0f s during %@ (--collective-timeout %.0f s); ending the job", idle, what, timeout))
                return
            }
        }
    }
}
