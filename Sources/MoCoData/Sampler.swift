import MoCoTensor

/// Epoch-wise shuffling with drop-last global batches, and their split among ranks.
///
/// Epoch `e` visits the dataset in the order of
/// `Xoshiro(seed: seed, stream: [0x5348, e]).permutation(datasetCount)`; step `s` is the
/// global batch `perm[s*B ..< (s+1)*B]`, and the incomplete tail batch is dropped (like
/// `DataLoader(drop_last: True)`). Rank `r` of `W` takes the contiguous slice
/// `[r*B/W, (r+1)*B/W)` of each global batch, so the ranks together see exactly the global
/// batch a single process sees, in the same order.
public struct EpochSampler: Sendable, Equatable {
    public let datasetCount: Int
    public let globalBatchSize: Int
    public let seed: UInt64

    public init(datasetCount: Int, globalBatch: Int, seed: UInt64) {
        precondition(datasetCount >= 0 && globalBatch > 0, "EpochSampler: need a positive batch size")
        self.datasetCount = datasetCount
        self.globalBatchSize = globalBatch
        self.seed = seed
    }

    /// Full global batches per epoch (drop-last).
    public var stepsPerEpoch: Int { datasetCount / globalBatchSize }

    /// The epoch's visiting order, a permutation of 0..<datasetCount.
    public func permutation(epoch: Int) -> [Int] {
        var rng = Xoshiro(seed: seed, stream: [0x5348, UInt64(epoch)])
        return rng.permutation(datasetCount)
    }

    public func globalBatch(epoch: Int, step: Int) -> [Int] {
        globalBatch(step: step, permutation: permutation(epoch: epoch))
    }

    /// The step's global batch out of an epoch permutation already computed.
    public func globalBatch(step: Int, permutation perm: [Int]) -> [Int] {
        precondition(step >= 0 && step < stepsPerEpoch, "EpochSampler: step \(step) outside 0..<\(stepsPerEpoch)")
        return Array(perm[(step * globalBatchSize)..<((step + 1) * globalBatchSize)])
    }

    /// Checks that `worldSize` ranks can split the global batch evenly.
    public func validate(rank: Int, worldSize: Int) throws {
        guard worldSize > 0, rank >= 0, rank < worldSize else {
            throw DataError(.invalidArgument, "rank \(rank) is outside 0..<\(worldSize)")
        }
        guard globalBatchSize % worldSize == 0 else {
            throw DataError(.invalidArgument, "global batch \(globalBatchSize) is not divisible by the world "
                + "size \(worldSize); choose a batch that is a multiple of the number of ranks")
        }
    }

    /// Rank `rank`'s contiguous slice of the global batch.
    public func shard(epoch: Int, step: Int, rank: Int, worldSize: Int) throws -> [Int] {
        try validate(rank: rank, worldSize: worldSize)
        return slice(globalBatch(epoch: epoch, step: step), rank: rank, worldSize: worldSize)
    }

    func slice(_ batch: [Int], rank: Int, worldSize: Int) -> [Int] {
        let per = globalBatchSize / worldSize
        return Array(batch[(rank * per)..<((rank + 1) * per)])
    }
}
