import XCTest
import Foundation
@testable import MoCoTensor

/// `FloatBuffer`'s large buffers ask for transparent huge pages (`HugePages`): 2 MiB aligned,
/// zero-filled, whole pages, and their mapping carries the kernel's huge-page advice (`hg` in
/// the VmFlags of /proc/self/smaps) while a small buffer's does not. Whether the kernel then
/// backs them with huge pages depends on its free memory, so that is not asserted.
final class HugePagesTests: XCTestCase {
    /// The VmFlags of the mapping that holds `p`, from /proc/self/smaps.
    func vmFlags(_ p: UnsafeRawPointer) throws -> [Substring] {
        // Read to the end: the file is generated as it is read, larger than one read returns.
        guard let file = FileHandle(forReadingAtPath: "/proc/self/smaps") else { throw XCTSkip("no /proc/self/smaps") }
        defer { try? file.close() }
        let smaps = String(decoding: file.readDataToEndOfFile(), as: UTF8.self)
        let a = UInt(bitPattern: p)
        var inside = false
        for line in smaps.split(separator: "\n") {
            let first = line.split(separator: " ").first ?? ""
            let range = first.split(separator: "-")
            if range.count == 2, let lo = UInt(range[0], radix: 16), let hi = UInt(range[1], radix: 16) {
                inside = lo <= a && a < hi
            } else if inside, line.hasPrefix("VmFlags:") {
                return line.split(separator: " ").dropFirst().map { $0 }
            }
        }
        throw XCTSkip("no mapping found for \(p) in /proc/self/smaps")
    }

    func testLargeBuffersAreAdvisedAndSmallOnesAreNot() throws {
        #if !os(Linux)
        throw XCTSkip("transparent huge pages are Linux's")
        #endif
        guard HugePages.enabled else { throw XCTSkip("MOCO_THP=0 in the test environment") }
        guard FileManager.default.fileExists(atPath: "/sys/kernel/mm/transparent_hugepage/enabled") else {
            throw XCTSkip("this kernel has no transparent huge pages")
        }
        let n = (HugePages.threshold + 3 * HugePages.size / 2) / 4   // 5.5 MiB: a partial last page
        let big = FloatBuffer(count: n)
        XCTAssertEqual(Int(bitPattern: big.ptr) % HugePages.size, 0)
        XCTAssertTrue(big.buffer.allSatisfy { $0 == 0 })
        big.ptr.update(repeating: 1, count: n)
        XCTAssertEqual(big.buffer.reduce(0, +), Float(n))
        let flags = try vmFlags(big.ptr)
        XCTAssertTrue(flags.contains("hg"), "\(flags)")
        XCTAssertTrue(try vmFlags(big.ptr + (n - 1)).contains("hg"), "the last, partial page")
        let small = FloatBuffer(count: 1000)
        XCTAssertEqual(Int(bitPattern: small.ptr) % 64, 0)
        XCTAssertTrue(small.buffer.allSatisfy { $0 == 0 })
        XCTAssertFalse(try vmFlags(small.ptr).contains("hg"))
        // The process's resident huge pages are readable (0 where the kernel gave none).
        XCTAssertGreaterThanOrEqual(HugePages.residentBytes(), 0)
    }

    func testSetting() {
        XCTAssertNil(HugePages.problem(environment: [:]))
        XCTAssertNil(HugePages.problem(environment: ["MOCO_THP": "1"]))
        XCTAssertNil(HugePages.problem(environment: ["MOCO_THP": "0"]))
        XCTAssertEqual(HugePages.problem(environment: ["MOCO_THP": "yes"]),
                       "MOCO_THP='yes' must be 1 (the default: huge pages for large buffers) or 0")
    }
}
