import CMPIShim
import MoCoComm

/// The collectives `runCommBench` measures.
public enum CommBenchOp: String, Sendable, CaseIterable {
    case allreduce, allgather, alltoallv

    /// nccl-tests' "bus bandwidth" factor: busbw = algbw * factor is what each link must carry
    /// for a bandwidth-optimal algorithm, comparable across rank counts.
    public func busFactor(ranks p: Int) -> Double {
        guard p > 1 else { return 0 }
        switch self {
        case .allreduce: return 2 * Double(p - 1) / Double(p)
        case .allgather, .alltoallv: return Double(p - 1) / Double(p)
        }
    }
}

/// One measurement: the same collective on the same buffers through the `Communicator` protocol
/// and through the raw MPI call (nil when `comm` is not an `MPICommunicator`).
public struct CommBenchRow: Sendable {
    public let op: CommBenchOp
    /// Message size S in bytes: the allreduce buffer, the allgather result, the alltoallv send
    /// buffer (each rank sends S/p to every rank).
    public let bytes: Int
    public let ranks: Int
    public let iterations: Int
    /// Seconds per call: best round, maximum over ranks.
    public let protocolSeconds: Double
    public let rawSeconds: Double?

    /// Algorithm bandwidth S / t in GB/s (10^9 bytes).
    public var protocolAlgbw: Double { Double(bytes) / protocolSeconds / 1e9 }
    public var rawAlgbw: Double? { rawSeconds.map { Double(bytes) / $0 / 1e9 } }
    /// Bus bandwidth algbw * `op.busFactor(ranks:)` in GB/s.
    public var protocolBusbw: Double { protocolAlgbw * op.busFactor(ranks: ranks) }
    /// Protocol time relative to raw MPI, in percent (positive = protocol slower).
    public var overheadPercent: Double? { rawSeconds.map { (protocolSeconds / $0 - 1) * 100 } }
}

/// Measures allreduce (sum, in place), allgather and alltoallv for each message size in `sizes`
/// (bytes, rounded down to whole floats per rank, at least one): protocol and raw MPI on the same
/// buffers, each timed in 4 alternating rounds of `iterations` calls (best round kept, see
/// `compare`). Collective: all
/// ranks must call it with the same arguments. Its own calls are counted in `comm.stats`.
public func runCommBench(comm: Communicator, sizes: [Int], iterations: Int) throws -> [CommBenchRow] {
    let p = comm.size
    let iters = max(1, iterations)
    let mpi = comm as? MPICommunicator
    let rounds = 4
    var rows: [CommBenchRow] = []

    /// Seconds per call of `body`: the maximum over ranks (the slowest rank defines the time of
    /// a collective) of the mean over `iters` calls.
    func time(_ body: () throws -> Void) throws -> Double {
        try comm.barrier()
        let watch = Stopwatch()
        for _ in 0..<iters { try body() }
        let local = watch.elapsed / Double(iters)
        return try comm.allreduce(local, op: .max)
    }

    /// Times `proto` and `raw` in `rounds` alternating rounds (ABBA order, so neither side
    /// systematically runs first on cold caches) after two warm-up calls each; keeps the fastest
    /// round of each, the usual way to filter out interference from other processes.
    func compare(_ proto: () throws -> Void, _ raw: (() throws -> Void)?) throws -> (Double, Double?) {
        for _ in 0..<2 { try proto(); try raw?() }
        var bestProto = Double.infinity, bestRaw = Double.infinity
        for round in 0..<rounds {
            if round % 2 == 0 {
                bestProto = min(bestProto, try time(proto))
                if let raw { bestRaw = min(bestRaw, try time(raw)) }
            } else {
                if let raw { bestRaw = min(bestRaw, try time(raw)) }
                bestProto = min(bestProto, try time(proto))
            }
        }
        return (bestProto, raw == nil ? nil : bestRaw)
    }

    for size in sizes {
        let perRank = max(1, size / 4 / p)      // floats each rank owns / sends to each peer
        let total = perRank * p                 // floats in the full message

        // allreduce over `total` floats.
        var buffer = [Float](repeating: 1, count: total)
        let arRows: (Double, Double?) = try buffer.withUnsafeMutableBufferPointer { b in
            let ptr = b.baseAddress!
            return try compare({ try comm.allreduce(ptr, count: total, op: .sum) }, mpi.map { m in {
                try checkMPI(MPI_Allreduce(moco_in_place(), ptr, Int32(total), moco_type_float(),
                                           moco_op_sum(), m.rawHandle), "MPI_Allreduce")
            } })
        }
        rows.append(CommBenchRow(op: .allreduce, bytes: total * 4, ranks: p, iterations: iters,
                                 protocolSeconds: arRows.0, rawSeconds: arRows.1))

        // allgather: perRank floats from each rank -> total floats.
        let send = [Float](repeating: Float(comm.rank), count: total)
        var recv = [Float](repeating: 0, count: total)
        let agRows: (Double, Double?) = try send.withUnsafeBufferPointer { s in
            try recv.withUnsafeMutableBufferPointer { r in
                let sp = s.baseAddress!, rp = r.baseAddress!
                return try compare({ try comm.allgather(sp, count: perRank, into: rp) }, mpi.map { m in {
                    try checkMPI(MPI_Allgather(sp, Int32(perRank), moco_type_float(), rp, Int32(perRank),
                                               moco_type_float(), m.rawHandle), "MPI_Allgather")
                } })
            }
        }
        rows.append(CommBenchRow(op: .allgather, bytes: total * 4, ranks: p, iterations: iters,
                                 protocolSeconds: agRows.0, rawSeconds: agRows.1))

        // alltoallv: perRank floats to every rank (uniform counts, contiguous displacements).
        let counts = [Int](repeating: perRank, count: p)
        let displs = (0..<p).map { $0 * perRank }
        let c32 = counts.map { Int32($0) }, d32 = displs.map { Int32($0) }
        let aaRows: (Double, Double?) = try send.withUnsafeBufferPointer { s in
            try recv.withUnsafeMutableBufferPointer { r in
                let sp = s.baseAddress!, rp = r.baseAddress!
                return try compare({
                    try comm.alltoallv(send: sp, sendCounts: counts, sendDispls: displs,
                                       recv: rp, recvCounts: counts, recvDispls: displs)
                }, mpi.map { m in {
                    try checkMPI(MPI_Alltoallv(sp, c32, d32, moco_type_float(), rp, c32, d32,
                                               moco_type_float(), m.rawHandle), "MPI_Alltoallv")
                } })
            }
        }
        rows.append(CommBenchRow(op: .alltoallv, bytes: total * 4, ranks: p, iterations: iters,
                                 protocolSeconds: aaRows.0, rawSeconds: aaRows.1))
    }
    return rows
}
