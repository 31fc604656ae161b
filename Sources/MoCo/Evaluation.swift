import MoCoTensor
import MoCoLayers
import MoCoData
import MoCoComm

/// Distributed kNN evaluation: each rank computes the features of its share of the bank (the
/// training set) and of the test set; the bank is all-gathered (N·d floats), each rank
/// classifies its test share, and the correct counts are summed.
public enum DistributedKNN {
    /// Contiguous share [lo, hi) of `count` items for `rank` of `size`.
    static func share(_ count: Int, rank: Int, size: Int) -> Range<Int> {
        (count * rank / size)..<(count * (rank + 1) / size)
    }

    /// Top-1 accuracy (%) of the weighted kNN classifier.
    /// - Parameter features: computes L2-normalised features for dataset indices (the caller's
    ///   encoder, raw pixels, ...) -> [indices.count, dim].
    /// - Parameter threads: engine workers of the similarity GEMMs.
    public static func top1(train: Dataset, test: Dataset, dim: Int, k: Int, t: Float, comm: Communicator, threads: Int = 1,
                            features: (Dataset, [Int]) -> FloatBuffer) throws -> Double {
        let W = comm.size, r = comm.rank
        let mine = share(train.count, rank: r, size: W)
        let local = features(train, Array(mine))
        let counts = (0..<W).map { share(train.count, rank: $0, size: W).count * dim }
        let bank = FloatBuffer(count: train.count * dim)
        try comm.allgatherv(local.ptr, count: mine.count * dim, into: bank.ptr, counts: counts)
        let tests = share(test.count, rank: r, size: W)
        let tf = features(test, Array(tests))
        let correct = KNN.correct(bank: bank.ptr, bankLabels: train.labels, bankCount: train.count,
                                  test: tf.ptr, testLabels: Array(test.labels[tests]), testCount: tests.count,
                                  dim: dim, classes: max(train.numClasses, test.numClasses), k: k, t: t, threads: threads)
        var total = [Double(correct)]
        try total.withUnsafeMutableBufferPointer { try comm.allreduce($0.baseAddress!, count: 1, op: .sum) }
        return 100 * total[0] / Double(test.count)
    }
}
