/// Sums per-channel BatchNorm statistics across workers (synchronised BatchNorm).
///
/// The layers never talk to MPI: the distributed trainer passes an object backed by its
/// `Communicator`; `nil` means statistics of the local batch only.
public protocol BatchStatReducer: AnyObject {
    /// In-place sum over all workers of `count` doubles.
    func sumAcrossWorkers(_ values: UnsafeMutablePointer<Double>, count: Int)
    /// Number of workers whose samples the summed statistics cover.
    var workers: Int { get }
}
