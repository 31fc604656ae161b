import MoCoComm

/// Runs `agree` and returns the error every rank got (nil if none).
private func agreement(_ comm: Communicator, _ local: Error?) -> Error? {
    do { try comm.agree(local); return nil } catch { return error }
}

/// Verifies `error` is peerFailed(rank, message) and identical on all ranks.
private func expectPeerFailed(_ comm: Communicator, _ error: Error?, rank: Int, message: String) throws -> String? {
    let text = error.map { "\($0)" } ?? "<no error>"
    let differing = try comm.checksumsAgree([fnv1a(text)])
    if !differing.isEmpty { return "ranks \(differing) got a different error than rank 0 (here: \(text))" }
    guard let e = error as? CommError, case .peerFailed(let r, let m) = e.kind else {
        return "expected peerFailed, got \(text)"
    }
    if r != rank || m != message { return "got peerFailed(rank: \(r), message: \(m.debugDescription)), want rank \(rank) \(message.debugDescription)" }
    return nil
}

let agreementChecks: [Check] = [
    Check(name: "agree-no-error") { comm in
        agreement(comm, nil).map { "threw \($0)" }
    },
    Check(name: "agree-one-rank-error") { comm in
        let bad = comm.size - 1
        let local = comm.rank == bad ? CheckFailure("injected error on rank \(bad)") : nil
        return try expectPeerFailed(comm, agreement(comm, local), rank: bad, message: "injected error on rank \(bad)")
    },
    Check(name: "agree-lowest-of-several") { comm in
        let p = comm.size, r = comm.rank
        let fails = r % 2 == 1 || r == p - 1
        let lowest = p > 1 ? 1 : 0
        let local = fails ? CheckFailure("error \(r)") : nil
        return try expectPeerFailed(comm, agreement(comm, local), rank: lowest, message: "error \(lowest)")
    },
    Check(name: "agree-keeps-peer-message") { comm in
        let local = comm.rank == 0 ? CommError.peerFailed(rank: 42, message: "original") : nil
        return try expectPeerFailed(comm, agreement(comm, local), rank: 0, message: "original")
    },
    Check(name: "checksums-agree-equal") { comm in
        let differing = try comm.checksumsAgree([1.5, Double(comm.size), 1e-300, -0.0])
        return differing.isEmpty ? nil : "differing \(differing)"
    },
    Check(name: "checksums-agree-differ") { comm in
        let p = comm.size, r = comm.rank
        var values = [1.5, Double(p), 1e-300]
        if p > 1 && r == p - 1 { values[1] = values[1].nextUp }
        if p > 2 && r == 1 { values.append(0) }
        let want = (p > 2 ? [1] : []) + (p > 1 ? [p - 1] : [])
        return compare(try comm.checksumsAgree(values), Array(Set(want)).sorted())
    },
]
