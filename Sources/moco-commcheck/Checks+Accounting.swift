import MoCoComm

let accountingChecks: [Check] = [
    Check(name: "stats-accounting") { comm in
        let p = comm.size, r = comm.rank
        comm.resetStats()
        if comm.stats.totalCalls != 0 { return "reset left \(comm.stats.totalCalls) calls" }
        var a = [Float](repeating: 1, count: 100)
        try comm.allreduce(&a, op: .sum)
        let buf = UnsafeMutablePointer<Float>.allocate(capacity: 50)
        defer { buf.deallocate() }
        buf.initialize(repeating: 0, count: 50)
        try comm.iallreduce(buf, count: 50, op: .sum).wait()
        _ = try comm.allgather([Float](repeating: 0, count: 10))
        let sendCounts = (0..<p).map { $0 + 1 }
        let sendDispls = sendCounts.indices.map { sendCounts[..<$0].reduce(0, +) }
        let recvCounts = [Int](repeating: r + 1, count: p)
        let recvDispls = (0..<p).map { $0 * (r + 1) }
        let send = [Float](repeating: 0, count: sendCounts.reduce(0, +))
        var recv = [Float](repeating: 0, count: p * (r + 1))
        try send.withUnsafeBufferPointer { s in
            try recv.withUnsafeMutableBufferPointer {
                try comm.alltoallv(send: s.baseAddress!, sendCounts: sendCounts, sendDispls: sendDispls,
                                   recv: $0.baseAddress!, recvCounts: recvCounts, recvDispls: recvDispls)
            }
        }
        var b = [UInt8](repeating: 0, count: 64)
        try b.withUnsafeMutableBytes { try comm.broadcast($0.baseAddress!, bytes: 64, root: p - 1) }
        try comm.barrier()
        let s = comm.stats
        let expected: [(CollectiveKind, Int, Int)] = [
            (.allreduce, 1, 400), (.iallreduce, 1, 200), (.allgather, 1, 40),
            (.alltoallv, 1, (sendCounts.reduce(0, +) - (r + 1)) * 4),
            (.broadcast, 1, r == p - 1 ? 64 : 0), (.barrier, 1, 0),
        ]
        for (kind, calls, bytes) in expected where s[kind].calls != calls || s[kind].bytesSent != bytes {
            return "\(kind): \(s[kind].calls) calls / \(s[kind].bytesSent) B, want \(calls) / \(bytes)"
        }
        let ring = 2 * Double(p - 1) / Double(p) * 600
        if abs(s.ringAllreduceBytesEstimate - ring) > 1e-9 { return "ring estimate \(s.ringAllreduceBytesEstimate), want \(ring)" }
        if s.totalCalls != 6 || s.totalSeconds < 0 { return "totals \(s.totalCalls) calls, \(s.totalSeconds) s" }
        return nil
    },
    Check(name: "invalid-arguments-throw-locally") { comm in
        var x: Float = 0, y: Float = 0
        do {
            try comm.allgatherv(&x, count: 1, into: &y, counts: [1] + [Int](repeating: 1, count: comm.size))
            return "allgatherv with \(comm.size + 1) counts did not throw"
        } catch let e as CommError {
            guard case .invalidArgument(let call, _) = e.kind, call == "MPI_Allgatherv" else { return "wrong error \(e)" }
        }
        do {
            try comm.broadcast(&x, bytes: 4, root: comm.size)
            return "broadcast with root \(comm.size) did not throw"
        } catch let e as CommError {
            guard case .invalidArgument(let call, _) = e.kind, call == "MPI_Bcast" else { return "wrong error \(e)" }
        }
        return nil
    },
    Check(name: "mpi-error-text") { _ in
        let e = CommError.mpi(call: "MPI_Allreduce", code: 2)
        let d = e.description
        guard d.hasPrefix("MPI_Allreduce failed: "), d.hasSuffix(" (code 2)"), d.count > 32 else { return "description \(d.debugDescription)" }
        return nil
    },
]
