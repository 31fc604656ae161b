import MoCoTensor
import MoCoComm

/// Executes a `ShufflePlan`: crops to the ranks that compute their keys, keys back to their
/// owners, each as one all-to-all. Buffers are planned once per (local batch, sample size).
final class ShuffleExchange {
    private var packed = FloatBuffer(count: 0)
    private var staged = FloatBuffer(count: 0)

    private func reserve(_ count: Int) {
        if packed.count < count { packed = FloatBuffer(count: count); staged = FloatBuffer(count: count) }
    }

    /// crops: [n, S] owned by this rank -> shuffled: [n, S] (this rank's slice of the shuffled batch)
    func shuffle(_ crops: UnsafePointer<Float>, into shuffled: UnsafeMutablePointer<Float>, sampleSize S: Int,
                 plan: ShufflePlan, comm: Communicator) throws {
        let n = plan.localBatch
        reserve(n * S)
        // Pack crops by destination, in the order of their shuffled positions.
        var o = 0
        for dest in plan.sendSamples { for i in dest { (packed.ptr + o * S).update(from: crops + i * S, count: S); o += 1 } }
        let sc = plan.sendCounts, rc = plan.recvCounts
        try comm.alltoallv(send: packed.ptr, sendCounts: sc.map { $0 * S }, sendDispls: ShufflePlan.displacements(sc).map { $0 * S },
                           recv: staged.ptr, recvCounts: rc.map { $0 * S }, recvDispls: ShufflePlan.displacements(rc).map { $0 * S })
        o = 0
        for src in plan.recvPositions { for j in src { (shuffled + j * S).update(from: staged.ptr + o * S, count: S); o += 1 } }
    }

    /// keys: [n, D] in shuffled order -> owned: [n, D] in this rank's sample order
    func unshuffle(_ keys: UnsafePointer<Float>, into owned: UnsafeMutablePointer<Float>, dim D: Int,
                   plan: ShufflePlan, comm: Communicator) throws {
        let n = plan.localBatch
        reserve(n * D)
        var o = 0
        for src in plan.recvPositions { for j in src { (packed.ptr + o * D).update(from: keys + j * D, count: D); o += 1 } }
        let sc = plan.recvCounts, rc = plan.sendCounts
        try comm.alltoallv(send: packed.ptr, sendCounts: sc.map { $0 * D }, sendDispls: ShufflePlan.displacements(sc).map { $0 * D },
                           recv: staged.ptr, recvCounts: rc.map { $0 * D }, recvDispls: ShufflePlan.displacements(rc).map { $0 * D })
        o = 0
        for dest in plan.sendSamples { for i in dest { (owned + i * D).update(from: staged.ptr + o * D, count: D); o += 1 } }
    }
}
