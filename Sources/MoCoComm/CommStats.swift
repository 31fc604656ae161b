/// The kinds of collective the `Communicator` counts separately.
public enum CollectiveKind: String, Sendable, CaseIterable, Comparable {
    case allreduce, iallreduce, allgather, allgatherv, reduceScatter, alltoallv, broadcast, barrier

    public static func < (a: CollectiveKind, b: CollectiveKind) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Per-rank communication counters.
///
/// Bytes use an algorithm-independent definition of "what this rank contributes", so they are the
/// same whatever algorithm MPI picks and whichever `Communicator` runs the program:
/// - allreduce / iallreduce: `count * elementSize` (see `ringAllreduceBytesEstimate` for what a
///   bandwidth-optimal ring actually moves: `2(p-1)/p` times that);
/// - allgather / allgatherv: this rank's own contribution;
/// - reduceScatter: the `size * count` elements this rank passes;
/// - alltoallv: the sum of `sendCounts` excluding the block to itself;
/// - broadcast: `bytes` on the root, 0 elsewhere; barrier: 0.
///
/// `seconds` is the wall time spent inside the calls (for iallreduce: initiation plus `wait()`),
/// i.e. time this rank was blocked on communication.
public struct CommStats: Sendable, Equatable, CustomStringConvertible {
    public struct Entry: Sendable, Equatable {
        public var calls: Int = 0
        public var bytesSent: Int = 0
        public var seconds: Double = 0
        public init(calls: Int = 0, bytesSent: Int = 0, seconds: Double = 0) {
            self.calls = calls; self.bytesSent = bytesSent; self.seconds = seconds
        }
    }

    /// Number of ranks; used by the ring estimate.
    public let worldSize: Int
    public private(set) var entries: [CollectiveKind: Entry] = [:]

    public init(worldSize: Int) { self.worldSize = worldSize }

    public subscript(kind: CollectiveKind) -> Entry { entries[kind] ?? Entry() }

    public var totalCalls: Int { entries.values.reduce(0) { $0 + $1.calls } }
    public var totalBytesSent: Int { entries.values.reduce(0) { $0 + $1.bytesSent } }
    public var totalSeconds: Double { entries.values.reduce(0) { $0 + $1.seconds } }

    /// Bytes passed to (blocking and non-blocking) allreduce.
    public var allreduceBytes: Int { self[.allreduce].bytesSent + self[.iallreduce].bytesSent }

    /// What a ring allreduce (reduce-scatter + allgather) sends per rank: `2(p-1)/p * bytes`.
    public var ringAllreduceBytesEstimate: Double {
        worldSize > 1 ? 2 * Double(worldSize - 1) / Double(worldSize) * Double(allreduceBytes) : 0
    }

    /// Counts one call.
    public mutating func record(_ kind: CollectiveKind, bytes: Int, seconds: Double) {
        var e = self[kind]
        e.calls += 1
        e.bytesSent += bytes
        e.seconds += seconds
        entries[kind] = e
    }

    /// Adds waiting time to an already counted call (used by `CommRequest.wait()`).
    public mutating func addSeconds(_ kind: CollectiveKind, _ seconds: Double) {
        var e = self[kind]
        e.seconds += seconds
        entries[kind] = e
    }

    public var description: String {
        var lines: [String] = []
        for kind in CollectiveKind.allCases {
            let e = self[kind]
            guard e.calls > 0 else { continue }
            lines.append("\(kind.rawValue): \(e.calls) calls, \(e.bytesSent) B sent, "
                + "\(String(format3: e.seconds)) s")
        }
        if allreduceBytes > 0 {
            lines.append("ring allreduce estimate: \(Int(ringAllreduceBytesEstimate.rounded())) B")
        }
        return lines.isEmpty ? "no communication" : lines.joined(separator: "\n")
    }
}

/// The byte-accounting rules documented on `CommStats`, shared by all communicators.
enum ByteAccounting {
    static func allreduce(count: Int, elementSize: Int) -> Int { count * elementSize }
    static func allgather(count: Int, elementSize: Int) -> Int { count * elementSize }
    static func alltoallv(sendCounts: [Int], rank: Int, elementSize: Int) -> Int {
        var total = 0
        for (peer, c) in sendCounts.enumerated() where peer != rank { total += c }
        return total * elementSize
    }
    static func broadcast(bytes: Int, root: Int, rank: Int) -> Int { rank == root ? bytes : 0 }
}

extension String {
    /// Fixed 3-decimal formatting without Foundation.
    init(format3 value: Double) {
        let scaled = (value * 1000).rounded()
        let negative = scaled < 0
        let magnitude = Int(abs(scaled))
        let frac = magnitude % 1000
        let fracText = frac < 10 ? "00\(frac)" : frac < 100 ? "0\(frac)" : "\(frac)"
        self = (negative ? "-" : "") + "\(magnitude / 1000).\(fracText)"
    }
}
