import Foundation
import CBLAS

/// Fork-join parallelism for the engine's non-BLAS work, with a fixed partition of the work.
///
/// `Parallel.threads` is the number of workers of a region (set together with the BLAS threads
/// through `BLAS.threads`). Work is always split by `partition(_:parts:)`, which depends only on
/// the size and the thread count, and every reduction is either per-index (one worker computes
/// it alone) or combined afterwards in worker order, so results are bitwise reproducible for a
/// given thread count.
public enum Parallel {
    /// Workers per region (1: run inline on the caller).
    nonisolated(unsafe) public static var threads = 1

    /// Calls `body(t)` for t in 0..<parts on up to `parts` threads (the caller and persistent
    /// `WorkerPool` threads claim parts as they come) and waits for all. A call made while a
    /// region runs (nested, or from another thread) runs its parts inline, in order.
    /// BLAS runs single-threaded inside the region (each worker calls it on its own slice)
    /// and gets its thread count back afterwards.
    public static func run(_ parts: Int, _ body: (Int) -> Void) {
        if parts <= 1 || inRegion { for t in 0..<max(1, parts) { body(t) }; return }
        let blas = Int(openblas_get_num_threads())
        if blas != 1 { openblas_set_num_threads(1) }
        inRegion = true
        if !pool(workers: parts - 1).run(parts, body) { for t in 0..<parts { body(t) } }
        inRegion = false
        if blas != 1 { openblas_set_num_threads(Int32(blas)) }
    }

    /// True while a region runs (set and cleared by the thread that starts regions, before
    /// its workers start and after they finish); nested calls run inline.
    nonisolated(unsafe) public private(set) static var inRegion = false

    /// One pool per worker count, created on first use and kept for the process.
    nonisolated(unsafe) private static var pools: [Int: WorkerPool] = [:]
    private static let poolsLock = NSLock()
    private static func pool(workers: Int) -> WorkerPool {
        poolsLock.lock(); defer { poolsLock.unlock() }
        if let p = pools[workers] { return p }
        let p = WorkerPool(workers: workers)
        pools[workers] = p
        return p
    }

    /// The `t`-th of `parts` contiguous, nearly equal ranges of 0..<n.
    @inline(__always)
    public static func partition(_ n: Int, parts: Int, _ t: Int) -> Range<Int> {
        let lo = n * t / parts, hi = n * (t + 1) / parts
        return lo..<hi
    }

    /// Runs `body(range)` over `threads` contiguous ranges of 0..<n (inline when n is small:
    /// fewer than `minimum` items per worker).
    public static func forRanges(_ n: Int, minimum: Int = 1, _ body: (Range<Int>) -> Void) {
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
