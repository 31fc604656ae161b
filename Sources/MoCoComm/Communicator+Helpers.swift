/// Convenience collectives built on the `Communicator` primitives, so they behave identically on
/// every implementation. All are collective: every rank must call them with matching arguments.
extension Communicator {
    // MARK: Scalars

    /// Allreduce of one Double.
    public func allreduce(_ value: Double, op: ReduceOp) throws -> Double {
        var v = value
        try allreduce(&v, count: 1, op: op)
        return v
    }

    /// Allreduce of one Int64.
    public func allreduce(_ value: Int64, op: ReduceOp) throws -> Int64 {
        var v = value
        try allreduce(&v, count: 1, op: op)
        return v
    }

    /// Allreduce of one Int (carried as Int64).
    public func allreduce(_ value: Int, op: ReduceOp) throws -> Int {
        Int(try allreduce(Int64(value), op: op))
    }

    /// In-place allreduce of a whole array.
    public func allreduce(_ values: inout [Float], op: ReduceOp) throws {
        let n = values.count
        try values.withUnsafeMutableBufferPointer { try allreduce($0.baseAddress!, count: n, op: op) }
    }

    public func allreduce(_ values: inout [Double], op: ReduceOp) throws {
        let n = values.count
        try values.withUnsafeMutableBufferPointer { try allreduce($0.baseAddress!, count: n, op: op) }
    }

    public func allreduce(_ values: inout [Int64], op: ReduceOp) throws {
        let n = values.count
        try values.withUnsafeMutableBufferPointer { try allreduce($0.baseAddress!, count: n, op: op) }
    }

    // MARK: Gathers

    /// Every rank's value, in rank order.
    public func allgather(_ value: Int64) throws -> [Int64] {
        var mine = value
        var all = [Int64](repeating: 0, count: size)
        try all.withUnsafeMutableBytes { dst in
            try withUnsafeBytes(of: &mine) { src in
                try allgather(bytes: src.baseAddress!, count: 8, into: dst.baseAddress!)
            }
        }
        return all
    }

    /// Every rank's value, in rank order.
    public func allgather(_ value: Double) throws -> [Double] {
        try allgather(Int64(bitPattern: value.bitPattern)).map { Double(bitPattern: UInt64(bitPattern: $0)) }
    }

    /// Every rank's float array (equal lengths on all ranks), concatenated in rank order.
    public func allgather(_ values: [Float]) throws -> [Float] {
        let n = values.count
        var all = [Float](repeating: 0, count: n * size)
        try values.withUnsafeBufferPointer { src in
            try all.withUnsafeMutableBufferPointer { dst in
                // A zero-length array may have a nil base address; MPI only needs a valid pointer.
                var dummy: Float = 0
                let s = src.baseAddress ?? withUnsafePointer(to: &dummy) { $0 }
                try allgather(s, count: n, into: dst.baseAddress ?? UnsafeMutablePointer(mutating: s))
            }
        }
        return all
    }

    /// Every rank's byte string (lengths may differ), in rank order.
    public func allgather(bytes: [UInt8]) throws -> [[UInt8]] {
        let lengths = try allgather(Int64(bytes.count)).map(Int.init)
        let maxLength = lengths.max() ?? 0
        var padded = bytes + [UInt8](repeating: 0, count: maxLength - bytes.count)
        var all = [UInt8](repeating: 0, count: maxLength * size)
        if maxLength > 0 {
            try padded.withUnsafeMutableBytes { src in
                try all.withUnsafeMutableBytes { dst in
                    try allgather(bytes: src.baseAddress!, count: maxLength, into: dst.baseAddress!)
                }
            }
        }
        return (0..<size).map { r in Array(all[r * maxLength ..< r * maxLength + lengths[r]]) }
    }

    // MARK: Broadcasts

    /// Broadcasts a byte string of any length from `root`; `bytes` is ignored on other ranks.
    public func broadcast(bytes: [UInt8], root: Int) throws -> [UInt8] {
        var length = Int64(rank == root ? bytes.count : 0)
        try broadcast(&length, bytes: 8, root: root)
        var buffer = rank == root ? bytes : [UInt8](repeating: 0, count: Int(length))
        if length > 0 {
            try buffer.withUnsafeMutableBytes { try broadcast($0.baseAddress!, bytes: Int(length), root: root) }
        }
        return buffer
    }

    /// Broadcasts a UTF-8 string from `root`; `string` is ignored on other ranks.
    public func broadcast(string: String, root: Int) throws -> String {
        String(decoding: try broadcast(bytes: Array(string.utf8), root: root), as: UTF8.self)
    }

    /// Broadcasts an Int64 from `root`.
    public func broadcast(_ value: Int64, root: Int) throws -> Int64 {
        var v = value
        try broadcast(&v, bytes: 8, root: root)
        return v
    }

    /// Broadcasts a Double array from `root`; the length is taken from `root`.
    public func broadcast(_ values: [Double], root: Int) throws -> [Double] {
        let n = Int(try broadcast(Int64(values.count), root: root))
        var buffer = rank == root ? values : [Double](repeating: 0, count: n)
        if n > 0 {
            try buffer.withUnsafeMutableBytes { try broadcast($0.baseAddress!, bytes: n * 8, root: root) }
        }
        return buffer
    }
}
