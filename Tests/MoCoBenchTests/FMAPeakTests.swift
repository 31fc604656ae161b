import XCTest
import Foundation
@testable import MoCoBench

/// The FMA probe of `moco bench step`: on a CPU with AVX2 and FMA (/proc/cpuinfo) it runs and
/// reports a plausible rate (above 4 GFLOP/s, a quarter of one FMA port at 1 GHz, so that a
/// loaded machine still passes; below two 16-lane units at 6 GHz); without them
/// it reports 0 and "none" rather than a wrong figure.
final class FMAPeakTests: XCTestCase {
    func testProbeMatchesTheCPUFlags() throws {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        guard let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else {
            throw XCTSkip("no /proc/cpuinfo flags line")
        }
        let words = Set(flags.split(separator: " ").map(String.init))
        let g = FMAPeak.gflops(threads: 1, seconds: 0.05)
        if words.contains("avx2") && words.contains("fma") {
            XCTAssertEqual(FMAPeak.isa, words.contains("avx512f") ? "avx512f" : "avx2+fma")
            // Lanes x 2 FLOPs x FMA units per cycle: 8 lanes on 1 unit at 1 GHz = 16; 16 lanes on
            // 2 units at 6 GHz = 384 GFLOP/s.
            XCTAssertGreaterThan(g, 4, "one thread's FMA rate")
            XCTAssertLessThan(g, 384, "one thread's FMA rate")
        } else {
            XCTAssertEqual(g, 0)
            XCTAssertEqual(FMAPeak.isa, "none")
        }
        XCTAssertEqual(FMAPeak.gflops(threads: 0), 0, "no threads, no figure")
    }
}
