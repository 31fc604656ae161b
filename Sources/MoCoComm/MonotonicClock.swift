#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Monotonic wall-clock seconds (CLOCK_MONOTONIC), for timing communication and benchmarks.
public enum MonotonicClock {
    /// Seconds since an arbitrary fixed point; only differences are meaningful.
    @inline(__always)
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

/// Measures elapsed seconds from its creation (or last `restart()`).
public struct Stopwatch: Sendable {
    private var start: Double
    public init() { start = MonotonicClock.now() }
    public var elapsed: Double { MonotonicClock.now() - start }
    public mutating func restart() { start = MonotonicClock.now() }
}
