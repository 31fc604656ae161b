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

    /// FuzzIDXPair (an image file and a label file, as `Dataset.loadIDX` reads them): image sizes
    /// 2^30 x 0x02000080 x 0x04000000 overflowed in the same multiplication (a trap).
    func testIDXPairWithOverflowingImageSizesIsRejected() {
        let input: [UInt8] = [
            0x30, 0x00, 0x00, 0x00, 0x08, 0x03, 0x40, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x80, 0x04, 0x00,
            0x00, 0x00, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C,
            0x0D, 0x0E, 0x0F, 0x10, 0x13, 0x14, 0x18, 0x11, 0x17, 0x16, 0x15, 0x12, 0x19, 0x1A, 0x1B, 0x1C,
            0x1D, 0x1E, 0x1F, 0x00, 0x00, 0x08, 0x01, 0x05, 0x00, 0x00, 0x01, 0x09,
        ]
        // The fuzz target's framing: a 2-byte little-endian length of the image file, then the files.
        let split = 2 + (Int(input[0]) | Int(input[1]) << 8)
        assertDataError(.corrupt, contains: ["images", "dimensions 1073741824x33554560x67108864", "more bytes than"]) {
            let images = try IDX.parse(Array(input[2..<split]), path: "images", dimensions: 3)
            let labels = try IDX.parse(Array(input[split...]), path: "labels", dimensions: 1)
            _ = try Dataset.fromIDX(name: "fuzz", images: images, labels: labels, imagesPath: "images",
                                    labelsPath: "labels", mean: [0.5], std: [0.25])
        }
    }
}
