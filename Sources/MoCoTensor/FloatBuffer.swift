import Foundation

/// An owned, 64-byte aligned buffer of `Float`, allocated once and reused.
///
/// Every activation, gradient and workspace of the engine lives in one of these, so the hot
/// loops see a raw `UnsafeMutablePointer<Float>` and never an `Array` subscript.
///
/// Buffers of `HugePages.threshold` bytes or more are aligned to 2 MiB, rounded up to whole
/// 2 MiB pages and marked `MADV_HUGEPAGE` before they are first written (Linux; `HugePages`), so
/// that the kernel backs them with transparent huge pages where it allows it (`madvise`, the
/// Debian default, or `always`). The engine's passes stream through activations of several MiB
/// each (ResNet-20's first stage at batch 256: 12.8 MB per map); with 4 KiB pages every 4 KiB
/// of such a pass needs its own TLB entry.
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let ptr: UnsafeMutablePointer<Float>

    /// Allocates `count` floats, zero-filled.
    public init(count: Int) {
        precondition(count >= 0, "FloatBuffer: negative count \(count)")
        self.count = count
        var bytes = max(count, 1) * MemoryLayout<Float>.stride
        let huge = HugePages.enabled && bytes >= HugePages.threshold
        if huge { bytes = (bytes + HugePages.size - 1) / HugePages.size * HugePages.size }
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: huge ? HugePages.size : 64)
        if huge { HugePages.advise(raw, bytes: bytes) }
        raw.initializeMemory(as: Float.self, repeating: 0, count: max(count, 1))
        ptr = raw.assumingMemoryBound(to: Float.self)
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { ptr.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { UnsafeMutableRawPointer(ptr).deallocate() }

    public var buffer: UnsafeMutableBufferPointer<Float> { .init(start: ptr, count: count) }
    public var array: [Float] { Array(buffer) }

    public func zero() { ptr.update(repeating: 0, count: count) }
    public func copy(from other: FloatBuffer) {
        precondition(other.count == count, "FloatBuffer.copy: \(other.count) != \(count)")
        ptr.update(from: other.ptr, count: count)
    }
}

/// The current resident set (VmRSS of /proc/self/status), in bytes; 0 where unavailable.
public func residentBytes() -> Int { procKilobytes("/proc/self/status", "VmRSS:") * 1024 }

/// Resident-set peak of this process in bytes (Linux `VmHWM`), 0 where unknown.
public func peakResidentBytes() -> Int { procKilobytes("/proc/self/status", "VmHWM:") * 1024 }

/// The number on the line of a small /proc file that starts with `key` ("VmRSS:   345 kB"), 0
/// where the file or the line is missing. (One read: files the kernel generates larger than a
/// page, such as /proc/self/smaps, would need reading to the end.)
func procKilobytes(_ path: String, _ key: String) -> Int {
    guard let s = try? String(contentsOfFile: path, encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix(key) {
        return line.split(separator: " ").compactMap { Int($0) }.first ?? 0
    }
    return 0
}
