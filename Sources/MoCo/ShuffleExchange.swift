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
        try exchange(crops, into: shuffled, rowSize: S, send: plan.sendSamples, receive: plan.recvPositions,
                     rows: plan.localBatch, comm: comm)
    }

    /// keys: [n, D] in shuffled order -> owned: [n, D] in this rank's sample order
    func unshuffle(_ keys: UnsafePointer<Float>, into owned: UnsafeMutablePointer<Float>, dim D: Int,
                   plan: ShufflePlan, comm: Communicator) throws {
        try exchange(keys, into: owned, rowSize: D, send: plan.recvPositions, receive: plan.sendSamples,
                     rows: plan.localBatch, comm: comm)
    }

    /// One all-to-all of rows: `send[p]` lists the rows of `src` for rank p (in order), and rows
    /// from rank p land at the rows `receive[p]` of `dst`. The unshuffle is the shuffle with the
    /// two lists swapped.
    /// src: [rows, R] -> dst: [rows, R]
    private func exchange(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, rowSize R: Int,
                          send: [[Int]], receive: [[Int]], rows n: Int, comm: Communicator) throws {
        reserve(n * R)
        var o = 0
        for peer in send { for i in peer { (packed.ptr + o * R).update(from: src + i * R, count: R); o += 1 } }
        let sc = send.map(\.count), rc = receive.map(\.count)
        try comm.alltoallv(send: packed.ptr, sendCounts: sc.map { $0 * R }, sendDispls: ShufflePlan.displacements(sc).map { $0 * R },
                           recv: staged.ptr, recvCounts: rc.map { $0 * R }, recvDispls: ShufflePlan.displacements(rc).map { $0 * R })
        o = 0
        for peer in receive { for j in peer { (dst + j * R).update(from: staged.ptr + o * R, count: R); o += 1 } }
    }
}
