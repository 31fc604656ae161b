import Foundation
import Synchronization

/// Persistent worker threads for `Parallel.run`: part 0 of a region runs on the caller, part t
/// on worker t. Between regions a worker spins for `spinSeconds` (a training step starts its
/// next region within microseconds) and then sleeps on a condition variable.
///
/// Why not `DispatchQueue.concurrentPerform`: on this 2-vCPU VM a parked dispatch worker takes
/// tens to hundreds of microseconds to wake, the caller meanwhile claims the idle iterations
/// itself, and a step runs ~1,000 regions; a 1-process x 2-thread step ran ~35% slower per
/// worker than 2 processes x 1 thread. Spinning briefly keeps the second core on the step.
///
/// Protocol (sequentially consistent atomics): the caller publishes `job` and `parts`, sets
/// `pending` to the worker count and bumps `generation`; each worker that sees a new
/// generation runs its part (if t < parts) and decrements `pending`; the caller runs part 0
/// and waits until `pending` is 0. A sleeping worker registers in `sleepers` under `lock`
/// and re-checks `generation` before waiting, and the caller broadcasts under `lock` when it
/// sees sleepers, so no wake-up is lost.
final class WorkerPool: @unchecked Sendable {
    let workers: Int
    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let condition = NSCondition()
    private var job: ((Int) -> Void)?
    private var parts = 0
    /// Seconds a worker spins for the next region before sleeping.
    static let spinSeconds = 0.0005

    init(workers: Int) {
        precondition(workers >= 1)
        self.workers = workers
        for w in 1...workers {
            let thread = Thread { self.loop(w) }   // pools live for the process
            thread.name = "moco-worker-\(w)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Runs `body(t)` for t in 0..<parts (parts <= workers + 1) and returns when all are done.
    /// Returns false without running anything if another region is running (the caller then
    /// runs the parts inline).
    func run(_ parts: Int, _ body: (Int) -> Void) -> Bool {
        precondition(parts <= workers + 1, "WorkerPool: \(parts) parts for \(workers) workers")
        guard busy.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged
        else { return false }
        withoutActuallyEscaping(body) { b in
            job = b
            self.parts = parts
            pending.store(workers, ordering: .sequentiallyConsistent)
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                condition.lock(); condition.broadcast(); condition.unlock()
            }
            b(0)
            var spins = 0
            while pending.load(ordering: .sequentiallyConsistent) > 0 {
                spins += 1
                if spins > 1000 { sched_yield() }
            }
            job = nil
        }
        busy.store(false, ordering: .sequentiallyConsistent)
        return true
    }

    private func loop(_ w: Int) {
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
            if w < parts, let job { job(w) }
            pending.subtract(1, ordering: .sequentiallyConsistent)
        }
    }
}
