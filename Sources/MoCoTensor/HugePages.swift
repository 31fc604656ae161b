#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Transparent huge pages for the engine's large buffers (`FloatBuffer`).
///
/// Linux backs anonymous memory with 4 KiB pages unless a region asks for 2 MiB ones
/// (`madvise(MADV_HUGEPAGE)`, honoured when /sys/kernel/mm/transparent_hugepage/enabled is
/// `madvise` or `always`). A buffer of at least `threshold` bytes is aligned to `size` and
/// advised; the values and the bits of every result are unchanged, only the TLB's reach is.
/// `MOCO_THP=0` in the environment turns it off for the process (read once, at the first
/// buffer): an A/B switch, like OpenBLAS's environment variables.
public enum HugePages {
    /// 2 MiB, the x86-64 huge page.
    public static let size = 2 << 20
    /// Buffers this large or larger are advised (smaller ones would waste most of a page).
    public static let threshold = 4 << 20
    public static let enabled: Bool = {
        #if os(Linux)
        return ProcessInfo.processInfo.environment["MOCO_THP"] != "0"
        #else
        return false
        #endif
    }()

    /// Why the environment's MOCO_THP is not a setting (nil when it is: unset, 1 or 0).
    public static func problem(environment: [String: String]) -> String? {
        guard let v = environment["MOCO_THP"], v != "1" && v != "0" else { return nil }
        return "MOCO_THP='\(v)' must be 1 (the default: huge pages for large buffers) or 0"
    }

    /// Asks for huge pages over [p, p + bytes) (p and bytes multiples of `size`); a kernel
    /// without THP refuses, which changes nothing.
    static func advise(_ p: UnsafeMutableRawPointer, bytes: Int) {
        #if os(Linux)
        _ = madvise(p, bytes, MADV_HUGEPAGE)
        #endif
    }

    /// Bytes of this process's anonymous memory backed by huge pages (`AnonHugePages` of
    /// /proc/self/smaps_rollup); 0 where unavailable.
    public static func residentBytes() -> Int { procKilobytes("/proc/self/smaps_rollup", "AnonHugePages:") * 1024 }
}
