import Foundation
import MoCoComm

/// Checks of the MPI progress thread (`moco-commcheck progress US`; `--progress-thread` of
/// `moco train` and `moco bench step`). Every other check also runs with the thread started,
/// i.e. with every MPI call behind its lock.
let progressChecks: [Check] = [
    Check(name: "progress-thread-idle") { comm in
        // Nothing pending: the thread only sleeps, no MPI call.
        guard let mpi = comm as? MPICommunicator, mpi.progressInterval != nil else { return "no progress thread" }
        let before = mpi.progressPolls
        usleep(30_000)
        let after = mpi.progressPolls
        return after == before ? nil : "\(after - before) polls while nothing was pending"
    },
    Check(name: "progress-thread-advances") { comm in
        // A 16 MB allreduce needs many rounds of messages; the training thread computes for
        // 0.5 s without any MPI call, so only the progress thread can move it. It must be
        // complete at the first test() afterwards, with the right sums.
        guard let mpi = comm as? MPICommunicator, mpi.progressInterval != nil else { return "no progress thread" }
        let p = comm.size, r = comm.rank, n = 1 << 22
        let buf = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { buf.deallocate() }
        for i in 0..<n { buf[i] = Float(r + 1) * Float(i % 7) }
        let before = mpi.progressPolls
        let request = try comm.iallreduce(buf, count: n, op: .sum)
        let end = Date().addingTimeInterval(0.5)
        var work = 0.0
        while Date() < end { work += cpuWork(100_000) }
        let polls = mpi.progressPolls - before
        let done = try request.test()
        try request.wait()
        if polls == 0 { return "the progress thread made no call while the request was pending" }
        if !done { return "not complete after 0.5 s of computation (\(polls) progress calls)" }
        if work <= 0 { return "cpu work result \(work)" }
        return compare(Array(UnsafeBufferPointer(start: buf, count: n)), (0..<n).map { Float(p * (p + 1) / 2) * Float($0 % 7) })
    },
]
