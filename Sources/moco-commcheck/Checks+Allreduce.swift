import MoCoComm

let reductionCount = 1037

let allreduceChecks: [Check] = [
    Check(name: "allreduce-sum-float") { comm in
        let p = comm.size, r = comm.rank
        var x = (0..<reductionCount).map { Float((r + 1) * ($0 % 13 + 1)) }
        try comm.allreduce(&x, op: .sum)
        return compare(x, (0..<reductionCount).map { Float(p * (p + 1) / 2 * ($0 % 13 + 1)) })
    },
    Check(name: "allreduce-max-float") { comm in
        let p = comm.size, r = comm.rank
        var x = (0..<reductionCount).map { i in Float(r * 1000 + i % 17) * (i % 2 == 0 ? 1 : -1) }
        try comm.allreduce(&x, op: .max)
        return compare(x, (0..<reductionCount).map { i in i % 2 == 0 ? Float((p - 1) * 1000 + i % 17) : -Float(i % 17) })
    },
    Check(name: "allreduce-min-float") { comm in
        let p = comm.size, r = comm.rank
        var x = (0..<reductionCount).map { i in Float(r * 1000 + i % 17) * (i % 2 == 0 ? 1 : -1) }
        try comm.allreduce(&x, op: .min)
        return compare(x, (0..<reductionCount).map { i in i % 2 == 0 ? Float(i % 17) : -Float((p - 1) * 1000 + i % 17) })
    },
    Check(name: "allreduce-sum-double") { comm in
        // 1e12 + multiples of 0.5: every partial sum is exact, whatever the reduction order.
        let p = comm.size, r = comm.rank
        var x = (0..<reductionCount).map { 1e12 + Double(r + 1) * 0.5 * Double($0 % 11 + 1) }
        try comm.allreduce(&x, op: .sum)
        return compare(x, (0..<reductionCount).map { Double(p) * 1e12 + Double(p * (p + 1)) / 4 * Double($0 % 11 + 1) })
    },
    Check(name: "allreduce-max-min-double") { comm in
        let p = comm.size, r = comm.rank
        var hi = (0..<reductionCount).map { -1e300 + Double(r) * 1e290 + Double($0) }
        var lo = hi
        try comm.allreduce(&hi, op: .max)
        try comm.allreduce(&lo, op: .min)
        return compare(hi, (0..<reductionCount).map { -1e300 + Double(p - 1) * 1e290 + Double($0) }, "max ")
            ?? compare(lo, (0..<reductionCount).map { -1e300 + Double($0) }, "min ")
    },
    Check(name: "allreduce-sum-int64") { comm in
        let p = Int64(comm.size), r = Int64(comm.rank)
        var x = (0..<Int64(reductionCount)).map { (Int64(1) << 40) * (r + 1) + $0 }
        try comm.allreduce(&x, op: .sum)
        return compare(x, (0..<Int64(reductionCount)).map { (Int64(1) << 40) * (p * (p + 1) / 2) + p * $0 })
    },
    Check(name: "allreduce-max-min-int64") { comm in
        let p = Int64(comm.size), r = Int64(comm.rank)
        let signs = (0..<Int64(reductionCount)).map { $0 % 2 == 0 ? Int64(1) : -1 }
        var hi = (0..<Int64(reductionCount)).map { signs[Int($0)] * ((Int64(1) << 50) * (r + 1) + $0) }
        var lo = hi
        try comm.allreduce(&hi, op: .max)
        try comm.allreduce(&lo, op: .min)
        let wantHi = (0..<Int64(reductionCount)).map { i -> Int64 in
            signs[Int(i)] > 0 ? (Int64(1) << 50) * p + i : -((Int64(1) << 50) + i) }
        let wantLo = (0..<Int64(reductionCount)).map { i -> Int64 in
            signs[Int(i)] > 0 ? (Int64(1) << 50) + i : -((Int64(1) << 50) * p + i) }
        return compare(hi, wantHi, "max ") ?? compare(lo, wantLo, "min ")
    },
    Check(name: "allreduce-scalars") { comm in
        let p = comm.size, r = comm.rank
        let s = try comm.allreduce(Double(r) + 0.25, op: .sum)
        let m = try comm.allreduce(Int64(r * 7), op: .max)
        let n = try comm.allreduce(r - 3, op: .min)
        if s != Double(p * (p - 1) / 2) + 0.25 * Double(p) { return "sum \(s)" }
        if m != Int64((p - 1) * 7) { return "max \(m)" }
        if n != -3 { return "min \(n)" }
        return nil
    },
]

/// Busy CPU work to overlap with a non-blocking collective.
@inline(never)
func cpuWork(_ n: Int) -> Double {
    var acc = 0.0
    for i in 0..<n { acc += Double(i & 1023).squareRoot() }
    return acc
}

let iallreduceChecks: [Check] = [
    Check(name: "iallreduce-overlap") { comm in
        let p = comm.size, r = comm.rank, n = 1 << 18
        let buf = UnsafeMutablePointer<Float>.allocate(capacity: n)   // outlives the request
        defer { buf.deallocate() }
        for i in 0..<n { buf[i] = Float(r + 1) + Float(i % 5) }
        let request = try comm.iallreduce(buf, count: n, op: .sum)
        let work = cpuWork(2_000_000)                                   // overlapped computation
        try request.wait()
        try request.wait()                                              // second wait is a no-op
        if !request.isComplete { return "request not complete after wait" }
        if work <= 0 { return "cpu work result \(work)" }
        let got = Array(UnsafeBufferPointer(start: buf, count: n))
        return compare(got, (0..<n).map { Float(p * (p + 1) / 2 + p * ($0 % 5)) })
    },
    Check(name: "iallreduce-test-progress") { comm in
        // Polling with test() (MPI_Test) between pieces of work completes the request by itself.
        let p = comm.size, r = comm.rank, n = 1 << 16
        let buf = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { buf.deallocate() }
        for i in 0..<n { buf[i] = Float(r) + Float(i % 3) }
        let request = try comm.iallreduce(buf, count: n, op: .sum)
        var polls = 0
        while try !request.test() {
            polls += 1
            if polls > 10_000_000 { return "test() never reported completion" }
            _ = cpuWork(1_000)
        }
        if !request.isComplete { return "isComplete false after test() returned true" }
        try request.wait()                                              // no-op once complete
        return compare(Array(UnsafeBufferPointer(start: buf, count: n)), (0..<n).map { Float(p * (p - 1) / 2 + p * ($0 % 3)) })
    },
    Check(name: "iallreduce-two-outstanding") { comm in
        // Started in the same order on all ranks (MPI 3.1 §5.12), completed in reverse order.
        let p = comm.size, r = comm.rank, n = 4099
        let a = UnsafeMutablePointer<Float>.allocate(capacity: n)
        let b = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { a.deallocate(); b.deallocate() }
        for i in 0..<n { a[i] = Float(i % 9); b[i] = Float(r * 10 + i % 3) }
        let ra = try comm.iallreduce(a, count: n, op: .sum)
        let rb = try comm.iallreduce(b, count: n, op: .max)
        try rb.wait()
        try ra.wait()
        return compare(Array(UnsafeBufferPointer(start: a, count: n)), (0..<n).map { Float(p * ($0 % 9)) }, "sum ")
            ?? compare(Array(UnsafeBufferPointer(start: b, count: n)), (0..<n).map { Float((p - 1) * 10 + $0 % 3) }, "max ")
    },
]
