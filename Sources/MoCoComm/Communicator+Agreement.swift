/// Collective agreement: turning a local failure into the same error on every rank.
extension Communicator {
    /// Collective error agreement. Every rank passes its local error (or nil). If no rank failed
    /// this returns on all ranks; otherwise *every* rank, including the failing ones, throws
    /// `CommError.peerFailed(rank:message:)` naming the lowest failing rank and its message.
    ///
    /// Protocol: an allreduce(MIN) of "my rank if I failed, else size" finds the lowest failing
    /// rank (MPI 3.1 §5.9.6); that rank then broadcasts its message (MPI 3.1 §5.4). Both steps are
    /// collectives every rank takes part in, so nobody is left waiting in a later collective
    /// that a failed peer will never enter. A `peerFailed` error passed in keeps its original
    /// message, so nested agreements do not stack "rank r failed:" prefixes.
    public func agree(_ localError: Error?) throws {
        let flag = Int64(localError == nil ? size : rank)
        let lowest = Int(try allreduce(flag, op: .min))
        guard lowest < size else { return }
        var message = ""
        if rank == lowest, let error = localError {
            if let comm = error as? CommError, case .peerFailed(_, let inner) = comm.kind {
                message = inner
            } else {
                message = String(describing: error)
            }
        }
        let shared = try broadcast(string: message, root: lowest)
        throw CommError.peerFailed(rank: lowest, message: shared)
    }

    /// Runs `body` locally, then agrees on failure: returns its value if it succeeded on every
    /// rank, else throws the same `peerFailed` error on every rank.
    public func agreeing<T>(_ body: () throws -> T) throws -> T {
        var result: T?
        var failure: Error?
        do { result = try body() } catch { failure = error }
        try agree(failure)
        return result!
    }

    /// Consistency check: compares every rank's `values` with rank 0's, bit for bit (so -0.0 and
    /// 0.0 differ and identical NaNs match), and returns on every rank the sorted list of ranks
    /// whose values differ from rank 0's (a different length counts as differing). Empty means
    /// all ranks agree.
    public func checksumsAgree(_ values: [Double]) throws -> [Int] {
        let reference = try broadcast(values, root: 0)
        let same = reference.count == values.count
            && zip(reference, values).allSatisfy { $0.bitPattern == $1.bitPattern }
        let flags = try allgather(Int64(same ? 0 : 1))
        return flags.enumerated().compactMap { $0.element != 0 ? $0.offset : nil }
    }
}
