import CMPIShim

/// An error from the communication layer.
///
/// `description` is meant to be printed as is, e.g.
/// `MPI_Allreduce failed: MPI_ERR_COUNT: invalid count argument (code 2)` or
/// `rank 3 failed: data shard missing`.
public struct CommError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// An MPI call returned a code other than MPI_SUCCESS (possible because the communicator's
        /// error handler is MPI_ERRORS_RETURN, MPI 3.1 §8.3).
        case mpi(call: String, code: Int32, text: String)
        /// Another rank (the lowest failing one) reported an error through `agree(_:)`.
        case peerFailed(rank: Int, message: String)
        /// The arguments were rejected before any MPI call was made.
        case invalidArgument(call: String, reason: String)
        /// MPI is not in a state that allows the call (e.g. after `finalize()`).
        case unavailable(String)
    }

    public let kind: Kind

    public init(_ kind: Kind) { self.kind = kind }

    /// The error for MPI return code `code` of `call`, with the text from MPI_Error_string
    /// (MPI 3.1 §8.4).
    public static func mpi(call: String, code: Int32) -> CommError {
        CommError(.mpi(call: call, code: code, text: mpiErrorString(code)))
    }

    public static func peerFailed(rank: Int, message: String) -> CommError {
        CommError(.peerFailed(rank: rank, message: message))
    }

    public static func invalidArgument(_ call: String, _ reason: String) -> CommError {
        CommError(.invalidArgument(call: call, reason: reason))
    }

    public static func unavailable(_ what: String) -> CommError {
        CommError(.unavailable(what))
    }

    /// For `.peerFailed`, the failing rank; otherwise nil.
    public var failedRank: Int? {
        if case .peerFailed(let rank, _) = kind { return rank }
        return nil
    }

    public var description: String {
        switch kind {
        case .mpi(let call, let code, let text):
            return "\(call) failed: \(text) (code \(code))"
        case .peerFailed(let rank, let message):
            return "rank \(rank) failed: \(message)"
        case .invalidArgument(let call, let reason):
            return "\(call): invalid argument: \(reason)"
        case .unavailable(let what):
            return "communication unavailable: \(what)"
        }
    }
}

/// MPI_Error_string for `code`; a generic text if MPI is not active.
func mpiErrorString(_ code: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 512)
    _ = moco_error_string(code, &buffer, Int32(buffer.count))
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Throws `CommError.mpi` unless `code` is MPI_SUCCESS.
@inline(__always)
public func checkMPI(_ code: Int32, _ call: StaticString) throws {
    if code != moco_success() { throw CommError.mpi(call: "\(call)", code: code) }
}
