import MoCoComm

let gatherChecks: [Check] = [
    Check(name: "allgather") { comm in
        let p = comm.size, r = comm.rank, n = 5
        let send = (0..<n).map { Float(r * 100 + $0) }
        var recv = [Float](repeating: -1, count: p * n)
        try send.withUnsafeBufferPointer { s in
            try recv.withUnsafeMutableBufferPointer { try comm.allgather(s.baseAddress!, count: n, into: $0.baseAddress!) }
        }
        return compare(recv, (0..<p * n).map { Float(($0 / n) * 100 + $0 % n) })
    },
    Check(name: "allgather-helpers") { comm in
        let p = comm.size, r = comm.rank
        let ints = try comm.allgather(Int64(r * r + 7))
        let strings = try comm.allgather(bytes: Array(String(repeating: "rank-\(r);", count: r).utf8))
        let floats = try comm.allgather([Float(r), Float(-r)])
        return compare(ints, (0..<p).map { Int64($0 * $0 + 7) }, "int64 ")
            ?? compare(strings, (0..<p).map { Array(String(repeating: "rank-\($0);", count: $0).utf8) }, "bytes ")
            ?? compare(floats, (0..<p).flatMap { [Float($0), Float(-$0)] }, "floats ")
    },
    Check(name: "reduce-scatter") { comm in
        // Rank r sends block b filled with r·100 + b·10 + k; rank r receives block r summed over ranks.
        let p = comm.size, r = comm.rank, n = 3
        let send = (0..<p * n).map { Float(r * 100 + ($0 / n) * 10 + $0 % n) }
        var recv = [Float](repeating: -1, count: n + 2)                     // 2 floats of slack must stay -1
        try send.withUnsafeBufferPointer { s in
            try recv.withUnsafeMutableBufferPointer { try comm.reduceScatter(s.baseAddress!, count: n, into: $0.baseAddress!, op: .sum) }
        }
        let ranksSum = Float(100 * p * (p - 1) / 2)
        let want: [Float] = (0..<n).map { ranksSum + Float(p * (r * 10 + $0)) } + [-1, -1]
        return compare(recv, want)
    },
    Check(name: "allgatherv-unequal") { comm in
        let p = comm.size, r = comm.rank
        let counts = (0..<p).map { ($0 * 3 + 1) % 5 }                   // 1, 4, 2, 0, ...: includes an empty rank
        let send = (0..<max(1, counts[r])).map { Float(r * 1000 + $0) }
        var recv = [Float](repeating: -1, count: counts.reduce(0, +) + 3)  // 3 floats of slack must stay -1
        try send.withUnsafeBufferPointer { s in
            try recv.withUnsafeMutableBufferPointer {
                try comm.allgatherv(s.baseAddress!, count: counts[r], into: $0.baseAddress!, counts: counts)
            }
        }
        let want: [Float] = (0..<p).flatMap { src in (0..<counts[src]).map { Float(src * 1000 + $0) } } + [-1, -1, -1]
        return compare(recv, want)
    },
    Check(name: "alltoallv-unequal") { comm in
        let p = comm.size, r = comm.rank
        func count(_ from: Int, _ to: Int) -> Int { (from + 2 * to) % 3 + (from == to ? 1 : 0) }
        func value(_ from: Int, _ to: Int, _ k: Int) -> Float { Float(from * 10000 + to * 100 + k) }
        let gap: Float = -7, untouched: Float = -1
        // Send layout with a one-float gap before each block; receive layout with two-float gaps.
        let sendCounts = (0..<p).map { count(r, $0) }
        var sendDispls = [Int](), send = [Float]()
        for j in 0..<p {
            send.append(gap)
            sendDispls.append(send.count)
            send += (0..<sendCounts[j]).map { value(r, j, $0) }
        }
        let recvCounts = (0..<p).map { count($0, r) }
        var recvDispls = [Int](), want = [Float]()
        for i in 0..<p {
            want += [untouched, untouched]
            recvDispls.append(want.count)
            want += (0..<recvCounts[i]).map { value(i, r, $0) }
        }
        var recv = [Float](repeating: untouched, count: want.count)
        try send.withUnsafeBufferPointer { s in
            try recv.withUnsafeMutableBufferPointer {
                try comm.alltoallv(send: s.baseAddress!, sendCounts: sendCounts, sendDispls: sendDispls,
                                   recv: $0.baseAddress!, recvCounts: recvCounts, recvDispls: recvDispls)
            }
        }
        return compare(recv, want)
    },
]
