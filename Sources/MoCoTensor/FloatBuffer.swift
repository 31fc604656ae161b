import Foundation

/// An owned, 64-byte aligned buffer of `Float`, allocated once and reused.
///
/// Every activation, gradient and workspace of the engine lives in one of these, so the hot
/// loops see a raw `UnsafeMutablePointer<Float>` and never an `Array` subscript.
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let ptr: UnsafeMutablePointer<Float>

    /// Allocates `count` floats, zero-filled.
    public init(count: Int) {
        precondition(count >= 0, "FloatBuffer: negative count \(count)")
        self.count = count
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
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

/// Resident-set peak of this process in bytes (Linux `VmHWM`), 0 where unknown.
/// The current resident set (VmRSS of /proc/self/status), in bytes; 0 where unavailable.
public func residentBytes() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
    }
    return 0
}

public func peakResidentBytes() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        return kb * 1024
    }
    return 0
}
