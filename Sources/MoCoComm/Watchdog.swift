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
/// Time this process did not run does not count: both loops check the clock at least every
/// second, so a gap of more than `suspensionGap` seconds between two checks means the process
/// (or its machine) was suspended — SIGSTOP, `kill -STOP` of a whole job to free the cores, a
/// paused VM — and the gap moves their reference forward instead of counting as a stall. A
/// stalled peer still times out: its peers keep running, and their clocks see the wait.
///
/// `beat(_:)` names what the process does next ("step 12", "kNN evaluation"), for the messages.
public final class Watchdog: @unchecked Sendable {
    /// Seconds a collective may take.
    public let timeout: Double
    /// How long rank 0 collects the other ranks' reports after a timeout, before ending the job.
    public var reportWindow: Double { min(5, max(1, timeout / 4)) }
    /// Extra time before the backstop fires, so a collective's own timeout (with its report) wins.
    public var backstopGrace: Double { max(5, timeout / 2) }
    /// A gap between two clock checks longer than this is a suspension of the process, not a stall.
    public static let suspensionGap = 5.0

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
        let limit = timeout + backstopGrace, interval = min(1, limit / 10)
        var previous = MonotonicClock.now()
        while true {
            Thread.sleep(forTimeInterval: interval)
            let now = MonotonicClock.now()
            let late = now - previous - interval
            previous = now
            lock.lock()
            if late > Self.suspensionGap { last += late }   // not running: no one's stall
            let idle = now - last, what = label
            lock.unlock()
            if idle > limit {
                onExpiry(String(format: "watchdog: no progress for %.0f s during %@ (--collective-timeout %.0f s); ending the job", idle, what, timeout))
                return
            }
        }
    }
}
