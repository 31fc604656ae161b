import MoCoTensor
import MoCoComm

/// Data-parallel gradient averaging overlapped with the backward pass, in the manner of
/// Horovod's tensor fusion (Sergeev and Del Balso 2018): the parameters' gradients are one
/// contiguous buffer in forward order, the backward pass finalises them from the end, and as
/// soon as at least `bucketFloats` more of them are final (or all are), that tail is allreduced
/// without blocking while the backward continues. `finish` waits for every bucket and divides
/// by the number of ranks: g ← (1/W) Σ_r g_r.
///
/// Buckets decide when each part is sent, and with a ring allreduce (MPICommunicator asks Open
/// MPI for one) the order in which an element's W terms are added, which depends on the
/// element's position in its bucket: a given bucket size and world size give the same bits on
/// every run; another bucket size changes the sum only in rounding.
final class GradientBuckets {
    let comm: Communicator
    let grads: UnsafeMutablePointer<Float>
    let count: Int
    let bucketFloats: Int
    private var requests: [CommRequest] = []
    /// Gradients from this offset to `count` have been handed to an allreduce.
    private var pendingEnd = 0
    private var startError: Error?
    /// The last step's buckets in the order they started: their floats, and how long before the
    /// end of the backward pass (the call of `finish`) each started, in seconds. What a model of
    /// the overlap needs (scripts/comm_validate.py): bucket i can move from then on.
    public private(set) var lastStarts: [BucketStart] = []
    private var startTimes: [Double] = []

    /// grads: [count], the gradient buffer of the trained parameters.
    init(comm: Communicator, grads: UnsafeMutablePointer<Float>, count: Int, bucketFloats: Int) {
        self.comm = comm; self.grads = grads; self.count = count; self.bucketFloats = bucketFloats
    }

    /// Before a backward pass: nothing is final yet.
    func begin() {
        requests.removeAll(keepingCapacity: true)
        startTimes.removeAll(keepingCapacity: true)
        lastStarts.removeAll(keepingCapacity: true)
        pendingEnd = count
        startError = nil
    }

    /// The gradients from `offset` to the end are final (the encoder's `onGradientsReady`).
    func ready(from offset: Int) {
        guard comm.size > 1 else { return }
        // Give MPI a chance to progress the buckets already started (without --progress-thread
        // the only chance they get during the backward pass).
        for r in requests where !r.isComplete { _ = try? r.test() }
        guard startError == nil, pendingEnd - offset >= bucketFloats || offset == 0 else { return }
        do {
            requests.append(try comm.iallreduce(grads + offset, count: pendingEnd - offset, op: .sum))
            startTimes.append(MonotonicClock.now())
            lastStarts.append(BucketStart(floats: pendingEnd - offset, lead: 0))
        } catch { startError = error }
        pendingEnd = offset
    }

    /// Waits for every bucket and averages: grads ← (1/W) Σ_r grads_r.
    func finish() throws {
        let end = MonotonicClock.now()
        for i in lastStarts.indices { lastStarts[i].lead = end - startTimes[i] }
        if let startError { throw startError }
        for r in requests { try r.wait() }
        if comm.size > 1 { BLAS.scal(n: count, alpha: 1 / Float(comm.size), x: grads) }
    }
}

/// One gradient bucket of a step: its size, and how long before the end of the backward pass
/// its allreduce started (seconds).
public struct BucketStart: Sendable, Equatable {
    public var floats: Int
    public var lead: Double
}
