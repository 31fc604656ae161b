import MoCoTensor
import XCTest
import MoCoData

final class TwoCropLoaderTests: XCTestCase {
    let ds = Dataset.synthetic(split: .train, count: 50, channels: 1, height: 16, width: 16)

    func drain(_ loader: TwoCropLoader) throws -> [TwoCropBatch] {
        var out = [TwoCropBatch]()
        while let b = try loader.next() { out.append(b) }
        return out
    }

    func assertSame(_ a: TwoCropBatch, _ b: TwoCropBatch, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual([a.epoch, a.step], [b.epoch, b.step], file: file, line: line)
        XCTAssertEqual(a.indices, b.indices, file: file, line: line)
        XCTAssertEqual(a.query.array, b.query.array, file: file, line: line)
        XCTAssertEqual(a.key.array, b.key.array, file: file, line: line)
    }

    func testBackgroundEqualsSynchronousForTwoEpochs() throws {
        let sampler = EpochSampler(datasetCount: ds.count, globalBatch: 8, seed: 11)
        for (rank, world) in [(0, 1), (1, 2)] {
            let loader = try TwoCropLoader(dataset: ds, sampler: sampler, config: .mocoV2, seed: 42, rank: rank,
                                           worldSize: world, startEpoch: 0, startStep: 0, endEpoch: 2)
            let got = try drain(loader)
            XCTAssertEqual(got.count, 2 * sampler.stepsPerEpoch)
            var k = 0
            for epoch in 0..<2 {
                for step in 0..<sampler.stepsPerEpoch {
                    let ref = try TwoCropLoader.batch(dataset: ds, sampler: sampler, config: .mocoV2, seed: 42,
                                                      rank: rank, worldSize: world, epoch: epoch, step: step)
                    XCTAssertEqual(ref.query.count, 8 / world * 256)
                    assertSame(got[k], ref)
                    XCTAssertNotEqual(ref.query.array, ref.key.array)
                    k += 1
                }
            }
            XCTAssertNil(try loader.next())
        }
    }

    /// A consumed batch is released by the loader: with the producer ahead of the consumer,
    /// the queue must not retain every batch it ever held (a 0.8 MB-per-step leak in training).
    func testConsumedBatchesAreReleased() throws {
        let sampler = EpochSampler(datasetCount: ds.count, globalBatch: 2, seed: 3)
        let loader = try TwoCropLoader(dataset: ds, sampler: sampler, config: .mocoV2, seed: 1, rank: 0,
                                       worldSize: 1, startEpoch: 0, startStep: 0, endEpoch: 4, depth: 2)
        weak var firstQuery: FloatBuffer?
        var consumed = 0
        while true {
            // Let the producer fill the queue before each pop, so the queue is never drained.
            Thread.sleep(forTimeInterval: 0.002)
            guard let b = try loader.next() else { break }
            if consumed == 0 { firstQuery = b.query }
            consumed += 1
            if consumed == 10 { break }
        }
        XCTAssertEqual(consumed, 10)
        XCTAssertNil(firstQuery, "the loader still holds the first batch after 9 more were consumed")
        loader.stop()
    }

    func testEachViewIsItsOwnStream() throws {
        let sampler = EpochSampler(datasetCount: ds.count, globalBatch: 4, seed: 1)
        let b = try TwoCropLoader.batch(dataset: ds, sampler: sampler, config: .mocoV2, seed: 3, rank: 0,
                                        worldSize: 1, epoch: 2, step: 1)
        for (j, index) in b.indices.enumerated() {
            for (v, buf) in [(UInt64(0), b.query), (1, b.key)] {
                var rng = Xoshiro(seed: 3, stream: [0x4155, 2, UInt64(index), v])
                let one = FloatBuffer(count: 256)
                augment(ds, index: index, config: .mocoV2, rng: &rng, out: one.ptr)
                XCTAssertEqual(Array(buf.array[(j * 256)..<((j + 1) * 256)]), one.array)
            }
        }
    }

    func testResumeEqualsTailOfFullRun() throws {
        let sampler = EpochSampler(datasetCount: ds.count, globalBatch: 6, seed: 2)   // 8 steps per epoch
        let full = try drain(TwoCropLoader(dataset: ds, sampler: sampler, config: .mocoV1, seed: 9, rank: 0,
                                           worldSize: 2, startEpoch: 0, startStep: 0, endEpoch: 3, depth: 3))
        let resumed = try drain(TwoCropLoader(dataset: ds, sampler: sampler, config: .mocoV1, seed: 9, rank: 0,
                                              worldSize: 2, startEpoch: 1, startStep: 3, endEpoch: 3))
        XCTAssertEqual(full.count, 24)
        XCTAssertEqual(resumed.count, 24 - 8 - 3)
        XCTAssertEqual([resumed[0].epoch, resumed[0].step], [1, 3])
        for (a, b) in zip(resumed, full.suffix(resumed.count)) { assertSame(a, b) }
    }

    func testStopEndsTheThreadEarly() throws {
        let sampler = EpochSampler(datasetCount: ds.count, globalBatch: 2, seed: 2)
        let loader = try TwoCropLoader(dataset: ds, sampler: sampler, config: .mocoV2, seed: 1, rank: 0,
                                       worldSize: 1, startEpoch: 0, startStep: 0, endEpoch: 1000)
        XCTAssertNotNil(try loader.next())
        loader.stop()
        XCTAssertNil(try loader.next())
        loader.stop()
        // Dropping an unstopped loader stops its thread too (deinit).
        for _ in 0..<5 {
            let l = try TwoCropLoader(dataset: ds, sampler: sampler, config: .mocoV2, seed: 1, rank: 0,
                                      worldSize: 1, startEpoch: 0, startStep: 0, endEpoch: 1000)
            _ = try l.next()
        }
    }

    func testInvalidShardingThrowsAtInit() {
        let sampler = EpochSampler(datasetCount: ds.count, globalBatch: 6, seed: 2)
        assertDataError(.invalidArgument, contains: ["not divisible"]) {
            _ = try TwoCropLoader(dataset: self.ds, sampler: sampler, config: .mocoV2, seed: 1, rank: 0, worldSize: 4,
                                  startEpoch: 0, startStep: 0, endEpoch: 1)
        }
    }
}
