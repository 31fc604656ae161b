import Foundation
import MoCoTensor
import XCTest
import MoCoData

/// Throughput of one thread making MoCo v2 two-crop views of 28x28 images. Runs only with
/// MOCO_BENCH=1 (meaningful in a release build: `swift test -c release --filter AugmentBenchmark`).
final class AugmentBenchmark: XCTestCase {
    func testTwoCropThroughput() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["MOCO_BENCH"] == "1", "set MOCO_BENCH=1")
        for (channels, side) in [(1, 28), (3, 32)] {
            let ds = Dataset.synthetic(split: .train, count: 2048, channels: channels, height: side, width: side)
            let out = FloatBuffer(count: ds.imageSize)
            let images = 20_000
            let t0 = Date()
            for i in 0..<images {
                for v in 0..<2 {
                    var rng = Xoshiro(seed: 1, stream: [0x4155, 0, UInt64(i), UInt64(v)])
                    augment(ds, index: i % ds.count, config: .mocoV2, rng: &rng, out: out.ptr)
                }
            }
            let dt = Date().timeIntervalSince(t0)
            print(String(format: "two-crop v2 %dx%dx%d: %.0f images/s (%.0f views/s)", channels, side, side,
                         Double(images) / dt, Double(2 * images) / dt))
        }
    }
}
