/// Where each key crop and each key travels for shuffling BN across workers
/// (He et al. 2020, sec. 3.3, "Shuffling BN").
///
/// A global permutation π of the global batch of B = W·n samples is shared by all ranks.
/// Shuffled position j (0 ≤ j < B) is computed by rank j / n and takes the key crop of global
/// sample π[j], which rank π[j] / n holds at local index π[j] mod n. After the key encoder, the
/// key computed at position j returns to that owner. This equals the official
/// `x[idx_shuffle]` / `k[idx_unshuffle]` scheme but moves each crop and each key only to the
/// one rank that needs it (an all-to-all) instead of all-gathering the whole batch everywhere.
///
/// Blocks exchanged between two ranks are ordered by shuffled position j, so both sides can
/// compute the layout from π alone.
public struct ShufflePlan: Equatable, Sendable {
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

    /// Counts per peer, in samples, of the crop exchange (send side) and the key return (the
    /// reverse: what this rank received as crops it sends back as keys).
    public var sendCounts: [Int] { sendSamples.map(\.count) }
    public var recvCounts: [Int] { recvPositions.map(\.count) }

    /// Displacements (in samples) of contiguous blocks with these counts.
    public static func displacements(_ counts: [Int]) -> [Int] {
        var d = [Int](repeating: 0, count: counts.count)
        for i in 1..<max(counts.count, 1) { d[i] = d[i - 1] + counts[i - 1] }
        return d
    }
}
