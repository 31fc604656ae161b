import Foundation
import MoCoComm

let broadcastChecks: [Check] = [
    Check(name: "broadcast-nonzero-root") { comm in
        let root = comm.size - 1, n = 1000
        var buf = [UInt8](repeating: 0, count: n)
        if comm.rank == root { for k in 0..<n { buf[k] = UInt8((k * 7 + 3) & 0xff) } }
        try buf.withUnsafeMutableBytes { try comm.broadcast($0.baseAddress!, bytes: n, root: root) }
        return compare(buf, (0..<n).map { UInt8(($0 * 7 + 3) & 0xff) })
    },
    Check(name: "broadcast-helpers") { comm in
        let root = comm.size > 1 ? 1 : 0
        let text = "hello from rank \(root) — ünïcode ✓"
        let got = try comm.broadcast(string: comm.rank == root ? text : "ignored", root: root)
        let values = try comm.broadcast(comm.rank == 0 ? [1.5, -2, .pi] : [], root: 0)
        let empty = try comm.broadcast(bytes: comm.rank == root ? [] : [1, 2, 3], root: root)
        if got != text { return "string \(got.debugDescription)" }
        return compare(values, [1.5, -2, .pi], "doubles ") ?? compare(empty, [], "empty ")
    },
    Check(name: "barrier") { comm in
        // Rank 0 creates a file only after a delay, right before entering the barrier; every rank
        // must see it after leaving the barrier (MPI 3.1 §5.3). Only meaningful on a shared host.
        let token = try comm.broadcast(string: "\(ProcessInfo.processInfo.processIdentifier)-\(UInt64(MonotonicClock.now() * 1e9))", root: 0)
        let host = ProcessInfo.processInfo.hostName
        let sameHost = try comm.broadcast(string: host, root: 0) == host
        let path = NSTemporaryDirectory() + "/moco-commcheck-barrier-\(token)"
        try comm.barrier()
        if comm.rank == 0 {
            usleep(30_000)
            guard FileManager.default.createFile(atPath: path, contents: Data("x".utf8)) else {
                try comm.barrier(); try comm.barrier()
                return "cannot create \(path)"
            }
        }
        try comm.barrier()
        let seen = FileManager.default.fileExists(atPath: path)
        try comm.barrier()
        if comm.rank == 0 { try? FileManager.default.removeItem(atPath: path) }
        return sameHost && !seen ? "file written before the barrier not visible after it" : nil
    },
]
