import MoCoTensor
import XCTest
import MoCoData

/// The cheap part of the soak (`moco bench soak` is the real one): the loader thread, run for
/// many batches, must not grow the resident set. A leak of one batch (8 x 2 views x 28x28
/// floats = 50 KB) per step would add ~70 MB over the measured 1400 batches; allocator noise is
/// a few MB, so the bound is 16 MB.
final class LoaderMemoryTests: XCTestCase {
    func testLoaderResidentSetIsFlatOverManyBatches() throws {
        let ds = Dataset.synthetic(split: .train, count: 800, channels: 1, height: 28, width: 28)
        let sampler = EpochSampler(datasetCount: ds.count, globalBatch: 8, seed: 3)
        let loader = try TwoCropLoader(dataset: ds, sampler: sampler, config: .mocoV2, seed: 1, rank: 0, worldSize: 1,
                                       startEpoch: 0, startStep: 0, endEpoch: 16)
        defer { loader.stop() }
        var n = 0, warm = 0
        while let b = try loader.next() {
            n += 1
            _ = b.query.ptr[0]
            if n == 200 { warm = residentBytes() }
        }
        XCTAssertEqual(n, 16 * sampler.stepsPerEpoch)
        let grown = Double(residentBytes() - warm) / 1048576
        print(String(format: "loader: RSS grew %.2f MB over %d batches after warm-up", grown, n - 200))
        XCTAssertGreaterThan(warm, 0, "no /proc/self/status")
        XCTAssertLessThan(grown, 16)
    }
}
