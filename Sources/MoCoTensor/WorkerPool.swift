import Foundation
import Synchronization

/// Persistent worker threads for `Parallel.run`. Parts are claimed dynamically from an atomic
/// counter by the caller and the workers alike, so a region never waits for a worker that is
/// not running (the caller then runs every part itself). The result does not depend on who
/// runs a part: part t always computes the same slice. Between regions a worker spins for
/// `spinSeconds` (a training step starts its next region within microseconds), then sleeps.
///
/// Why not `DispatchQueue.concurrentPerform`: its workers park at once, and on this 2-vCPU VM
/// a parked worker takes long enough to wake that the caller has usually claimed the second
/// part itself; a step runs ~1,000 regions.
///
/// Protocol (sequentially consistent atomics): the caller publishes `job`, then stores
/// `parts << 32 | 0` into `ticket` and bumps `generation`. Anyone claims with
/// `ticket += 1`: index = low half, limit = high half; an index below the limit is a part to
/// run, counted in `done` when finished. The caller returns once `done == parts`. A worker
/// that saw a stale generation can only claim an index of the current region (the ticket is
/// reset after `job` is published) or none. A sleeping worker registers in `sleepers` under
/// the condition's lock and re-checks `generation` before waiting; the caller broadcasts
/// under the lock when it sees sleepers, so no wake-up is lost.
final class WorkerPool: @unchecked Sendable {
    let workers: Int
    private let generation = Atomic<Int>(0)
    private let ticket = Atomic<Int>(0)
    private let done = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let condition = NSCondition()
    private var job: ((Int) -> Void)?
    /// Seconds a worker spins for the next region before sleeping.
    static let spinSeconds = 0.0005

    init(workers: Int) {
        precondition(workers >= 1)
        self.workers = workers
        for w in 1...workers {
            let thread = Thread { self.loop() }   // pools live for the process
            thread.name = "moco-worker-\(w)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Runs `body(t)` for t in 0..<parts and returns when all are done. Returns false without
    /// running anything if another region is running on this pool (the caller then runs the
    /// parts inline).
    func run(_ parts: Int, _ body: (Int) -> Void) -> Bool {
        precondition(parts >= 1 && parts < 1 << 31)
        guard busy.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged
        else { return false }
        withoutActuallyEscaping(body) { b in
            job = b
            done.store(0, ordering: .sequentiallyConsistent)
            ticket.store(parts << 32, ordering: .sequentiallyConsistent)
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                condition.lock(); condition.broadcast(); condition.unlock()
            }
            work()
            var spins = 0
            while done.load(ordering: .sequentiallyConsistent) < parts {
                spins += 1
                if spins > 64 { sched_yield() }
            }
            job = nil
        }
        busy.store(false, ordering: .sequentiallyConsistent)
        return true
    }

    /// Claims and runs parts until none is left.
    private func work() {
        while true {
            let v = ticket.add(1, ordering: .sequentiallyConsistent).oldValue
            let index = v & 0xFFFF_FFFF, limit = v >> 32
            guard index < limit, let job else { return }
            job(index)
            done.add(1, ordering: .sequentiallyConsistent)
        }
    }

    private func loop() {
        var seen = generation.load(ordering: .sequentiallyConsistent)
        while true {
            var g = generation.load(ordering: .sequentiallyConsistent)
            if g == seen {
                let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(Self.spinSeconds * 1e9)
                var spins = 0
                while g == seen {
                    spins += 1
                    if spins & 255 == 0 && DispatchTime.now().uptimeNanoseconds > deadline {
                        condition.lock()
                        sleepers.add(1, ordering: .sequentiallyConsistent)
                        while generation.load(ordering: .sequentiallyConsistent) == seen { condition.wait() }
                        sleepers.subtract(1, ordering: .sequentiallyConsistent)
                        condition.unlock()
                    }
                    g = generation.load(ordering: .sequentiallyConsistent)
                }
            }
            seen = g
            work()
        }
    }
}
