import MoCoTensor
import MoCoComm

/// Shuffling BN (He et al. 2020, sec. 3.3): the key encoder sees the global batch in a random
/// order, so that the BatchNorm statistics of a key's sub-batch come from other samples than its
/// query's, and the model cannot find the positive through them ("cheating").
///
/// This type holds the three parts: the permutation π of each step (`permutation`), where each
/// crop and key travels (`Plan`), and the two all-to-all exchanges (`keys(of:perm:into:encode:)`).
/// Shuffled position j (0 ≤ j < B = W·n) is computed by rank j / n and takes the key crop of
/// global sample π[j], which rank π[j] / n holds at local index π[j] mod n; after the key
/// encoder, the key computed at position j returns to that owner. This equals the official
/// `x[idx_shuffle]` / `k[idx_unshuffle]` but moves each crop and each key only to the one rank
/// that needs it instead of all-gathering the whole batch everywhere. Buffers are kept across
/// steps.
public final class ShuffleBN {
    /// The shuffle-BN permutation of step `step` of `epoch`, over the global batch: the same on
    /// every rank, and a pure function of the seed and the position in the run.
    public static func permutation(seed: UInt64, epoch: Int, step: Int, batch: Int) -> [Int] {
        var rng = Xoshiro(seed: seed, stream: [0x5342_4E, UInt64(epoch), UInt64(step)])
        return rng.permutation(batch)
    }

    /// Where each key crop and each key travels for one permutation, seen from one rank.
    /// Blocks exchanged between two ranks are ordered by shuffled position j, so both sides can
    /// compute the layout from π alone.
    public struct Plan: Equatable, Sendable {
        public let worldSize: Int, rank: Int, localBatch: Int
        /// For every destination rank, the local sample indices this rank sends (crop exchange).
        public let sendSamples: [[Int]]
        /// For every source rank, the local shuffled positions (0..<n) its crops fill.
        public let recvPositions: [[Int]]

        /// - Parameter perm: π over the global batch (length W·n).
        public init(perm: [Int], worldSize W: Int, rank r: Int) {
            let B = perm.count
            precondition(W > 0 && B % W == 0, "global batch \(B) not divisible by \(W) ranks")
            let n = B / W
            worldSize = W; rank = r; localBatch = n
            var send = [[Int]](repeating: [], count: W)
            var recv = [[Int]](repeating: [], count: W)
            for j in 0..<B {
                let owner = perm[j] / n, computer = j / n
                if owner == r { send[computer].append(perm[j] % n) }
                if computer == r { recv[owner].append(j % n) }
            }
            sendSamples = send; recvPositions = recv
        }

        /// Displacements (in rows) of contiguous blocks with these counts.
        static func displacements(_ counts: [Int]) -> [Int] {
            var d = [Int](repeating: 0, count: counts.count)
            for i in 1..<max(counts.count, 1) { d[i] = d[i - 1] + counts[i - 1] }
            return d
        }
    }

    let comm: Communicator
    private var shuffled = FloatBuffer(count: 0)
    private var packed = FloatBuffer(count: 0)
    private var staged = FloatBuffer(count: 0)

    public init(comm: Communicator) { self.comm = comm }

    /// Keys of this rank's crops computed in shuffled order:
    /// crops: [n, S] -> shuffle -> `encode` ([n, S] -> [n, D]) -> unshuffle -> keys: [n, D].
    func keys(of crops: UnsafePointer<Float>, sampleSize S: Int, dim D: Int, perm: [Int],
              into keys: UnsafeMutablePointer<Float>,
              encode: (UnsafePointer<Float>) -> UnsafePointer<Float>) throws {
        let plan = Plan(perm: perm, worldSize: comm.size, rank: comm.rank)
        if shuffled.count < plan.localBatch * S { shuffled = FloatBuffer(count: plan.localBatch * S) }
        try shuffle(crops, into: shuffled.ptr, rowSize: S, plan: plan)
        try unshuffle(encode(shuffled.ptr), into: keys, rowSize: D, plan: plan)
    }

    /// crops: [n, R] owned by this rank -> shuffled: [n, R] (this rank's slice of the shuffled batch)
    func shuffle(_ crops: UnsafePointer<Float>, into shuffled: UnsafeMutablePointer<Float>, rowSize R: Int, plan: Plan) throws {
        try exchange(crops, into: shuffled, rowSize: R, send: plan.sendSamples, receive: plan.recvPositions, rows: plan.localBatch)
    }

    /// keys: [n, R] in shuffled order -> owned: [n, R] in this rank's sample order (the shuffle
    /// with the two lists swapped)
    func unshuffle(_ keys: UnsafePointer<Float>, into owned: UnsafeMutablePointer<Float>, rowSize R: Int, plan: Plan) throws {
        try exchange(keys, into: owned, rowSize: R, send: plan.recvPositions, receive: plan.sendSamples, rows: plan.localBatch)
    }

    /// One all-to-all of rows: `send[p]` lists the rows of `src` for rank p (in order), and rows
    /// from rank p land at the rows `receive[p]` of `dst`.
    /// src: [rows, R] -> dst: [rows, R]
    private func exchange(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, rowSize R: Int,
                          send: [[Int]], receive: [[Int]], rows n: Int) throws {
        if packed.count < n * R { packed = FloatBuffer(count: n * R); staged = FloatBuffer(count: n * R) }
        var o = 0
        for peer in send { for i in peer { (packed.ptr + o * R).update(from: src + i * R, count: R); o += 1 } }
        let sc = send.map(\.count), rc = receive.map(\.count)
        try comm.alltoallv(send: packed.ptr, sendCounts: sc.map { $0 * R }, sendDispls: Plan.displacements(sc).map { $0 * R },
                           recv: staged.ptr, recvCounts: rc.map { $0 * R }, recvDispls: Plan.displacements(rc).map { $0 * R })
        o = 0
        for peer in receive { for j in peer { (dst + j * R).update(from: staged.ptr + o * R, count: R); o += 1 } }
    }
}
