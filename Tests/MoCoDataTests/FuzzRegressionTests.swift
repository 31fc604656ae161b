import XCTest
import MoCoData

/// Inputs found by the fuzz targets (Fuzz/, docs/fuzzing.md) that crashed or misparsed before
/// the fix named in each test; the bytes are the fuzzer's, shortened where that kept the fault.
final class FuzzRegressionTests: XCTestCase {
    /// FuzzIDX: sizes 2^24 x (5 * 2^26) x 2^13 multiply to 5 * 2^63, which wrapped to Int.min;
    /// computing the trailing byte count from it then overflowed (a trap).
    func testIDXSizesWhoseProductOverflowsAreRejected() {
        let bytes: [UInt8] = [0, 0, 8, 3, 1, 0, 0, 0, 0x14, 0, 0, 0, 0, 0, 0x20, 0, 0x72, 0x61, 0x63, 0xDD]
        assertDataError(.corrupt, contains: ["fuzz.idx", "dimensions 16777216x335544320x8192", "more bytes than"]) {
            _ = try IDX.parse(bytes, path: "fuzz.idx", dimensions: 3)
        }
    }

    /// Sizes 2^22 x 2^21 x 2^21 multiply to exactly 2^64, which wrapped to 0: a bare 16-byte
    /// header parsed as an empty array with those sizes (and `Dataset` then trapped on them).
    func testIDXSizesWhoseProductWrapsToZeroAreRejected() {
        let bytes: [UInt8] = [0, 0, 8, 3] + be32(1 << 22) + be32(1 << 21) + be32(1 << 21)
        assertDataError(.corrupt, contains: ["dimensions 4194304x2097152x2097152", "more bytes than"]) {
            _ = try IDX.parse(bytes, path: "fuzz.idx", dimensions: 3)
        }
    }
}
