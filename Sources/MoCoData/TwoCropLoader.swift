import Foundation
import MoCoTensor

/// One step's input for a rank: the query and key views of each sample of its shard.
public struct TwoCropBatch: Sendable {
    public let epoch: Int
    public let step: Int
    /// Dataset indices of the shard, in order.
    public let indices: [Int]
    /// [n, C, H, W] view 0 of each sample.
    public let query: FloatBuffer
    /// [n, C, H, W] view 1 of each sample.
    public let key: FloatBuffer
}

/// Produces `TwoCropBatch`es in order on a background thread, a bounded queue ahead of the
/// consumer ("two crops" of MoCo's `TwoCropsTransform`, both with the same `AugmentConfig`).
///
/// View `v` of sample `i` in epoch `e` uses `Xoshiro(seed: seed, stream: [0x4155, e, i, v])`,
/// so every batch is a pure function of (seed, sampler, epoch, step, rank, worldSize) and a run
/// resumed at (epoch, step) sees exactly the batches an uninterrupted one would.
public final class TwoCropLoader: @unchecked Sendable {
    public let dataset: Dataset
    public let sampler: EpochSampler
    public let config: AugmentConfig
    public let seed: UInt64
    public let rank: Int
    public let worldSize: Int
    private let queue: BoundedQueue

    /// Starts producing from (startEpoch, startStep) up to the end of epoch `endEpoch - 1`.
    /// Throws if the global batch does not split among `worldSize` ranks.
    public init(dataset: Dataset, sampler: EpochSampler, config: AugmentConfig, seed: UInt64, rank: Int,
                worldSize: Int, startEpoch: Int, startStep: Int, endEpoch: Int, depth: Int = 2) throws {
        try sampler.validate(rank: rank, worldSize: worldSize)
        guard sampler.datasetCount == dataset.count else {
            throw DataError(.invalidArgument, "sampler is for \(sampler.datasetCount) samples, dataset has \(dataset.count)")
        }
        guard startEpoch >= 0, startStep >= 0, startStep <= sampler.stepsPerEpoch || startEpoch >= endEpoch else {
            throw DataError(.invalidArgument, "cannot start at epoch \(startEpoch) step \(startStep) "
                + "(\(sampler.stepsPerEpoch) steps per epoch)")
        }
        self.dataset = dataset
        self.sampler = sampler
        self.config = config
        self.seed = seed
        self.rank = rank
        self.worldSize = worldSize
        let queue = BoundedQueue(capacity: max(1, depth))
        self.queue = queue
        let thread = Thread { [dataset, sampler, config, seed, rank, worldSize] in
            var epoch = startEpoch, step = startStep
            var perm: [Int] = []
            var permEpoch = -1
            while epoch < endEpoch && !queue.isStopped {
                if step >= sampler.stepsPerEpoch { epoch += 1; step = 0; continue }
                if permEpoch != epoch { perm = sampler.permutation(epoch: epoch); permEpoch = epoch }
                let indices = sampler.slice(sampler.globalBatch(step: step, permutation: perm),
                                            rank: rank, worldSize: worldSize)
                let batch = TwoCropLoader.makeBatch(dataset: dataset, indices: indices, config: config,
                                                    seed: seed, epoch: epoch, step: step)
                if !queue.push(batch) { break }
                step += 1
            }
            queue.finish()
        }
        thread.name = "moco-data-loader"
        thread.stackSize = 8 << 20
        thread.start()
    }

    deinit { queue.stopAndWait() }

    /// The next batch in order, or nil once the last epoch is done (or after `stop()`).
    /// Blocks while the background thread is still producing it.
    public func next() throws -> TwoCropBatch? { queue.pop() }

    /// Stops the background thread and waits for it to exit. Idempotent.
    public func stop() { queue.stopAndWait() }

    /// The batch of `step` computed synchronously on the calling thread: the reference the
    /// background thread must reproduce.
    public static func batch(dataset: Dataset, sampler: EpochSampler, config: AugmentConfig, seed: UInt64,
                             rank: Int, worldSize: Int, epoch: Int, step: Int) throws -> TwoCropBatch {
        let indices = try sampler.shard(epoch: epoch, step: step, rank: rank, worldSize: worldSize)
        return makeBatch(dataset: dataset, indices: indices, config: config, seed: seed, epoch: epoch, step: step)
    }

    /// Augments view 0 (query) and view 1 (key) of each index.
    /// The generator of view `view` (0 query, 1 key) of sample `index` in `epoch`.
    public static func viewGenerator(seed: UInt64, epoch: Int, index: Int, view: Int) -> Xoshiro {
        Xoshiro(seed: seed, stream: [0x4155, UInt64(epoch), UInt64(index), UInt64(view)])
    }

    /// -> query, key: [n, C, H, W]
    public static func makeBatch(dataset: Dataset, indices: [Int], config: AugmentConfig, seed: UInt64,
                                 epoch: Int, step: Int) -> TwoCropBatch {
        let size = dataset.imageSize
        let query = FloatBuffer(count: indices.count * size)
        let key = FloatBuffer(count: indices.count * size)
        for (j, index) in indices.enumerated() {
            for (view, buffer) in [(0, query), (1, key)] {
                var rng = viewGenerator(seed: seed, epoch: epoch, index: index, view: view)
                augment(dataset, index: index, config: config, rng: &rng, out: buffer.ptr + j * size)
            }
        }
        return TwoCropBatch(epoch: epoch, step: step, indices: indices, query: query, key: key)
    }
}

/// A FIFO of at most `capacity` batches between one producer thread and the consumer, with
/// an NSCondition for "not full", "not empty", "finished" and "stopped".
private final class BoundedQueue: @unchecked Sendable {
    private let cond = NSCondition()
    /// Batches produced and not yet consumed (at most `capacity`).
    private var items: [TwoCropBatch] = []
    private let capacity: Int
    private var stopped = false
    private var finished = false

    init(capacity: Int) { self.capacity = capacity }

    var isStopped: Bool { cond.lock(); defer { cond.unlock() }; return stopped }

    /// Blocks while full; false if the queue was stopped (the batch is dropped).
    func push(_ b: TwoCropBatch) -> Bool {
        cond.lock(); defer { cond.unlock() }
        while items.count >= capacity && !stopped { cond.wait() }
        if stopped { return false }
        items.append(b)
        cond.broadcast()
        return true
    }

    /// Blocks while empty and the producer is still running; nil when done or stopped.
    func pop() -> TwoCropBatch? {
        cond.lock(); defer { cond.unlock() }
        while items.isEmpty && !finished && !stopped { cond.wait() }
        if stopped || items.isEmpty { return nil }
        // removeFirst is O(capacity); the queue must not keep a consumed batch alive.
        let b = items.removeFirst()
        cond.broadcast()
        return b
    }

    /// Called by the producer as it exits.
    func finish() {
        cond.lock(); finished = true; cond.broadcast(); cond.unlock()
    }

    /// Asks the producer to stop and waits until it has exited.
    func stopAndWait() {
        cond.lock()
        stopped = true
        items.removeAll()
        cond.broadcast()
        while !finished { cond.wait() }
        cond.unlock()
    }
}
