import MoCoTensor
import XCTest
import MoCoData

final class SamplerTests: XCTestCase {
    func testEpochIsAPermutationWithDropLast() {
        let s = EpochSampler(datasetCount: 103, globalBatch: 10, seed: 5)
        XCTAssertEqual(s.stepsPerEpoch, 10)
        for epoch in 0..<3 {
            let batches = (0..<s.stepsPerEpoch).map { s.globalBatch(epoch: epoch, step: $0) }
            let seen = batches.flatMap { $0 }
            XCTAssertEqual(seen.count, 100)
            XCTAssertEqual(Set(seen).count, 100)
            XCTAssertTrue(seen.allSatisfy { (0..<103).contains($0) })
            // The batches are the permutation's prefix, in order; the last 3 are dropped.
            var rng = Xoshiro(seed: 5, stream: [0x5348, UInt64(epoch)])
            let perm = rng.permutation(103)
            XCTAssertEqual(seen, Array(perm[0..<100]))
        }
        XCTAssertNotEqual(s.globalBatch(epoch: 0, step: 0), s.globalBatch(epoch: 1, step: 0))
        XCTAssertNotEqual(s.permutation(epoch: 0), EpochSampler(datasetCount: 103, globalBatch: 10, seed: 6).permutation(epoch: 0))
    }

    func testShardsConcatenateToTheGlobalBatch() throws {
        let s = EpochSampler(datasetCount: 500, globalBatch: 24, seed: 9)
        for w in [1, 2, 3, 4, 6, 8] {
            for (epoch, step) in [(0, 0), (2, 7), (5, 19)] {
                let parts = try (0..<w).map { try s.shard(epoch: epoch, step: step, rank: $0, worldSize: w) }
                XCTAssertTrue(parts.allSatisfy { $0.count == 24 / w })
                XCTAssertEqual(parts.flatMap { $0 }, s.globalBatch(epoch: epoch, step: step))
            }
        }
    }

    func testIndivisibleBatchIsAnError() {
        let s = EpochSampler(datasetCount: 500, globalBatch: 10, seed: 9)
        assertDataError(.invalidArgument, contains: ["global batch 10", "world size 4"]) {
            _ = try s.shard(epoch: 0, step: 0, rank: 0, worldSize: 4)
        }
        assertDataError(.invalidArgument, contains: ["rank 2"]) {
            _ = try s.shard(epoch: 0, step: 0, rank: 2, worldSize: 2)
        }
    }
}
