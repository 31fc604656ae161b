import Foundation
import CBLAS
import Synchronization

/// Fork-join parallelism for the engine's non-BLAS work, with a fixed partition of the work.
/// Regions run on the persistent threads of `WorkerPool` (Dispatch's `concurrentPerform` when
/// another thread holds the pool).
///
/// The number of workers is passed by the caller (a layer has it from its `EngineConfig`); there
/// is no process-wide setting. Work is always split by `partition(_:parts:)`, which depends only
/// on the size and the thread count, and every reduction is either per-index (one worker
/// computes it alone) or combined afterwards in worker order, so results are bitwise
/// reproducible for a given thread count.
public enum Parallel {
    /// Calls `body(t)` for t in 0..<parts on up to `parts` threads and waits for all.
    /// BLAS runs single-threaded inside the region (each worker calls it on its own slice)
    /// and gets its thread count back afterwards.
    /// True while a region runs (set and cleared by the thread that starts regions, before
    /// its workers start and after they finish); nested calls run inline.
    nonisolated(unsafe) public private(set) static var inRegion = false

    public static func run(_ parts: Int, _ body: (Int) -> Void) {
        if parts <= 1 || inRegion { for t in 0..<max(1, parts) { body(t) }; return }
        inRegion = true
        defer { inRegion = false }
        let blas = Int(openblas_get_num_threads())
        if blas != 1 { openblas_set_num_threads(1) }
        withoutActuallyEscaping(body) { b in
            // The workers only run while this call waits, and each touches its own slice.
            if WorkerPool.shared?.run(parts, b) == true { return }
            let work = UncheckedSendable(b)
            DispatchQueue.concurrentPerform(iterations: parts) { t in work.value(t) }
        }
        if blas != 1 { openblas_set_num_threads(Int32(blas)) }
    }

    /// Calls `body(worker, item)` once for every item in 0..<items, handing the items out one at
    /// a time, in order, to up to `parts` workers as each becomes free. Only for items whose
    /// results do not depend on which worker computes them or in what order (e.g. the outputs of
    /// one group of samples of a convolution): then the result is the same bits as a fixed
    /// partition's, and on a shared machine a worker that loses its core for a while no longer
    /// holds the whole region back.
    public static func dynamic(_ parts: Int, items: Int, _ body: (_ worker: Int, _ item: Int) -> Void) {
        let workers = max(1, min(parts, items))
        if workers == 1 || inRegion { for i in 0..<items { body(0, i) }; return }
        let next = Atomic<Int>(0)
        run(workers) { t in
            while true {
                let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                if i >= items { return }
                body(t, i)
            }
        }
    }

    /// The `t`-th of `parts` contiguous, nearly equal ranges of 0..<n.
    @inline(__always)
    public static func partition(_ n: Int, parts: Int, _ t: Int) -> Range<Int> {
        let lo = n * t / parts, hi = n * (t + 1) / parts
        return lo..<hi
    }

    /// Runs `body(range)` over `threads` contiguous ranges of 0..<n (inline when n is small:
    /// fewer than `minimum` items per worker).
    public static func forRanges(_ n: Int, threads: Int, minimum: Int = 1, _ body: (Range<Int>) -> Void) {
        let parts = max(1, min(threads, n / max(1, minimum)))
        if parts == 1 { body(0..<n); return }
        run(parts) { t in body(partition(n, parts: parts, t)) }
    }
}

/// A value handed to the workers of one region (which finish before the region returns).
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
