/// A predefined reduction operation (MPI 3.1 §5.9.2).
///
/// All three are associative and commutative, so MPI may reduce in any order; for floating point
/// `sum` the result may therefore differ in the last bits between *runs* with different process
/// counts, but MPI guarantees every rank of one call receives the same result (MPI 3.1 §5.9.1,
/// "advice to implementors": the same result on all processes is strongly recommended and Open MPI
/// delivers it for its allreduce algorithms).
public enum ReduceOp: Sendable, CaseIterable, CustomStringConvertible {
    case sum, max, min

    public var description: String {
        switch self {
        case .sum: return "sum"
        case .max: return "max"
        case .min: return "min"
        }
    }
}
