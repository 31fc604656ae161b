/// Local argument checks shared by all communicators. MPI counts are C `int`, so everything
/// passed to MPI must fit in Int32 (MPI 3.1 §2.5.8 "large counts" are not used here).
enum Validate {
    static func count(_ n: Int, _ call: String) throws {
        guard n >= 0 else { throw CommError.invalidArgument(call, "negative count \(n)") }
        guard n <= Int(Int32.max) else {
            throw CommError.invalidArgument(call, "count \(n) exceeds Int32.max")
        }
    }

    static func root(_ root: Int, size: Int, _ call: String) throws {
        guard (0..<size).contains(root) else {
            throw CommError.invalidArgument(call, "root \(root) not in 0..<\(size)")
        }
    }

    /// Checks `counts` has one entry per rank, all valid, and `counts[rank] == count`.
    /// Returns the displacements (exclusive prefix sums) and the total.
    static func allgathervCounts(_ counts: [Int], count: Int, rank: Int, size: Int,
                                 _ call: String) throws -> (displs: [Int], total: Int) {
        guard counts.count == size else {
            throw CommError.invalidArgument(call, "counts has \(counts.count) entries, expected \(size)")
        }
        guard counts[rank] == count else {
            throw CommError.invalidArgument(call, "count \(count) != counts[\(rank)] = \(counts[rank])")
        }
        var displs = [Int](repeating: 0, count: size)
        var total = 0
        for (r, c) in counts.enumerated() {
            try Validate.count(c, call)
            displs[r] = total
            total += c
        }
        try Validate.count(total, call)
        return (displs, total)
    }

    /// Checks counts/displacements of one side of an alltoallv.
    static func vector(counts: [Int], displs: [Int], size: Int, side: String, _ call: String) throws {
        guard counts.count == size, displs.count == size else {
            throw CommError.invalidArgument(call, "\(side) counts/displs have \(counts.count)/\(displs.count) entries, expected \(size)")
        }
        for r in 0..<size {
            try Validate.count(counts[r], call)
            guard displs[r] >= 0, displs[r] <= Int(Int32.max) else {
                throw CommError.invalidArgument(call, "\(side) displacement \(displs[r]) for rank \(r) out of range")
            }
        }
    }
}

extension Array where Element == Int {
    /// The values as C ints; callers have validated the range.
    var int32s: [Int32] { map { Int32(truncatingIfNeeded: $0) } }
}
