import XCTest
@testable import MoCoTensor

/// The choice of OpenBLAS's kernel set (`BLASCore`): a known set below the CPU's vector level is
/// replaced by the set of that level, nothing else is, and the user's settings win.
final class BLASCoreTests: XCTestCase {
    func testReplacesOnlyKnownSetsBelowTheCPU() {
        // Debian's OpenBLAS 0.3.21 on a 5th-generation Xeon (AVX-512): Prescott.
        XCTAssertEqual(BLASCore.replacement(for: "Prescott", cpuLevel: 3), "SkylakeX")
        XCTAssertEqual(BLASCore.replacement(for: "Nehalem", cpuLevel: 2), "Haswell")
        XCTAssertEqual(BLASCore.replacement(for: "Sandybridge", cpuLevel: 2), "Haswell")
        XCTAssertEqual(BLASCore.replacement(for: "Core2", cpuLevel: 1), "Sandybridge")
        XCTAssertEqual(BLASCore.replacement(for: "Haswell", cpuLevel: 3), "SkylakeX")
        // At or above the CPU's level, or a baseline CPU: kept.
        XCTAssertNil(BLASCore.replacement(for: "Zen", cpuLevel: 2))
        XCTAssertNil(BLASCore.replacement(for: "Cooperlake", cpuLevel: 3))
        XCTAssertNil(BLASCore.replacement(for: "SkylakeX", cpuLevel: 2))
        XCTAssertNil(BLASCore.replacement(for: "Prescott", cpuLevel: 0))
        // A name this table does not know (a newer OpenBLAS's): never replaced.
        XCTAssertNil(BLASCore.replacement(for: "GraniteRapids", cpuLevel: 3))
        XCTAssertNil(BLASCore.replacement(for: "", cpuLevel: 3))
    }

    func testEnvironmentDecides() {
        let again = BLASCore.Decision.reexecute(core: "SkylakeX", detected: "Prescott")
        XCTAssertEqual(BLASCore.decide(environment: [:], core: "Prescott", cpuLevel: 3), again)
        XCTAssertEqual(BLASCore.decide(environment: ["MOCO_BLAS_CORE": "auto"], core: "Prescott", cpuLevel: 3), again)
        XCTAssertEqual(BLASCore.decide(environment: ["MOCO_BLAS_CORE": "keep"], core: "Prescott", cpuLevel: 3), .keep)
        // The user's own OPENBLAS_CORETYPE, and a process already re-executed, are left alone.
        XCTAssertEqual(BLASCore.decide(environment: ["OPENBLAS_CORETYPE": "Prescott"], core: "Prescott", cpuLevel: 3), .keep)
        XCTAssertEqual(BLASCore.decide(environment: ["MOCO_BLAS_CORE_DETECTED": "Prescott"], core: "Prescott", cpuLevel: 3), .keep)
        XCTAssertEqual(BLASCore.decide(environment: [:], core: "Zen", cpuLevel: 2), .keep)
    }

    func testThisMachineIsDescribed() {
        // The level is one of the four, and the library reports a name the table can read or not.
        XCTAssertTrue((0...3).contains(BLASCore.cpuVectorLevel))
        XCTAssertFalse(BLASCore.current.isEmpty)
    }
}
