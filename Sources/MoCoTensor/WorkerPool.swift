import CWorkerPool

/// The persistent worker threads behind `Parallel.run` (`CWorkerPool`): part t of every region
/// runs on the same thread, and idle workers spin for a while before they sleep on a futex, so
/// that the few hundred regions of a training step, microseconds apart, start without waking a
/// thread each time. With Dispatch's `concurrentPerform` (one wake-up per region) the second
/// core of a 1-process x 2-thread step idled ~16% of the step; docs/performance.md, "Parallel
/// regions", has the A/B.
final class WorkerPool: @unchecked Sendable {
    /// How long an idle worker, and a caller waiting for a region's last part, spin before they
    /// sleep: 1 ms, longer than the gaps between a step's regions. In a first A/B (3-4 noisy
    /// rounds) 200 µs gained less and 5 ms no more.
    static let spinNanoseconds = 1_000_000

    /// The pool of this process, or nil if it could not be allocated (`Parallel.run` then uses
    /// Dispatch).
    static let shared: WorkerPool? = WorkerPool()

    private let pool: OpaquePointer
    /// CPUs this process may run on (its affinity mask: one core per rank under `mpirun --bind-to core`).
    let allowedCPUs = moco_pool_allowed_cpus()

    init?() {
        guard let pool = moco_pool_create() else { return nil }
        self.pool = pool
    }

    /// Worker threads started so far.
    var workers: Int { moco_pool_workers(pool) }

    /// Runs body(t) for t in 0..<parts, t = 0 on this thread, and returns true when all have
    /// returned; false, with nothing run, if another thread holds the pool or a worker could not
    /// be started. The spin defaults to `spinNanoseconds`, and to none when `parts` exceeds the
    /// CPUs this process may use (spinning threads would then take turns with working ones).
    func run(_ parts: Int, spinNanoseconds spin: Int? = nil, _ body: @escaping (Int) -> Void) -> Bool {
        guard moco_pool_try_begin(pool) != 0 else { return false }
        let spinNanoseconds = spin ?? (parts <= allowedCPUs ? WorkerPool.spinNanoseconds : 0)
        var work = body
        let status = withUnsafeMutablePointer(to: &work) { context in
            moco_pool_run(pool, parts, spinNanoseconds, { context, part in
                context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(part)
            }, context)
        }
        return status == 0
    }
}
