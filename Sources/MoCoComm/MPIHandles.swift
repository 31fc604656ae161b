import CMPIShim

/// Swift element types that map to a predefined MPI datatype (MPI 3.1 §3.2.2).
protocol MPIElement {
    static var mpiType: MPI_Datatype { get }
}

extension Float: MPIElement { static var mpiType: MPI_Datatype { moco_type_float() } }
extension Double: MPIElement { static var mpiType: MPI_Datatype { moco_type_double() } }
extension Int64: MPIElement { static var mpiType: MPI_Datatype { moco_type_int64() } }
extension UInt8: MPIElement { static var mpiType: MPI_Datatype { moco_type_byte() } }

extension ReduceOp {
    /// The predefined MPI_Op (MPI 3.1 §5.9.2).
    var mpiOp: MPI_Op {
        switch self {
        case .sum: return moco_op_sum()
        case .max: return moco_op_max()
        case .min: return moco_op_min()
        }
    }
}

/// MPI thread-support levels (MPI 3.1 §12.4.3), in increasing order.
public enum MPIThreadLevel: Int, Sendable, Comparable, CustomStringConvertible {
    case single, funneled, serialized, multiple

    init(mpi value: Int32) {
        switch value {
        case moco_thread_multiple(): self = .multiple
        case moco_thread_serialized(): self = .serialized
        case moco_thread_funneled(): self = .funneled
        default: self = .single
        }
    }

    var mpiValue: Int32 {
        switch self {
        case .single: return moco_thread_single()
        case .funneled: return moco_thread_funneled()
        case .serialized: return moco_thread_serialized()
        case .multiple: return moco_thread_multiple()
        }
    }

    public static func < (a: MPIThreadLevel, b: MPIThreadLevel) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .single: return "MPI_THREAD_SINGLE"
        case .funneled: return "MPI_THREAD_FUNNELED"
        case .serialized: return "MPI_THREAD_SERIALIZED"
        case .multiple: return "MPI_THREAD_MULTIPLE"
        }
    }
}
