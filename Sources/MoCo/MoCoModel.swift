import Foundation
import MoCoTensor
import MoCoLayers
import MoCoOptim
import MoCoComm

/// The hyperparameters of one MoCo step.
public struct MoCoHyper: Sendable, Equatable {
    public var architecture: Architecture = .resnet20
    public var head: HeadKind = .mlp
    public var inChannels = 1
    public var dim = 128
    public var queueSize = 4096
    public var momentum: Float = 0.99      // m of the key encoder
    public var temperature: Float = 0.2    // T
    public var symmetric = false
    public var shuffleBN = true
    public var bnSplits = 1                // per rank
    public var syncBN = false
    public var sgdMomentum: Float = 0.9
    public var weightDecay: Float = 5e-4
    /// Floats per gradient-allreduce bucket (started during the backward pass).
    public var bucketFloats = 1 << 18
    public init() {}
}

/// Wall-clock seconds of each phase of a step.
public struct StepTimings: Sendable {
    public var queryForward = 0.0, keyForward = 0.0, loss = 0.0, backward = 0.0
    public var allreduceWait = 0.0, optimizer = 0.0, enqueue = 0.0
    public var total: Double { queryForward + keyForward + loss + backward + allreduceWait + optimizer + enqueue }
    public static func + (a: StepTimings, b: StepTimings) -> StepTimings {
        var r = a
        r.queryForward += b.queryForward; r.keyForward += b.keyForward; r.loss += b.loss; r.backward += b.backward
        r.allreduceWait += b.allreduceWait; r.optimizer += b.optimizer; r.enqueue += b.enqueue
        return r
    }
}

public struct StepResult: Sendable {
    /// Loss and contrastive top-1 (%) on this rank's samples.
    public var loss: Double
    public var acc1: Double
    public var timings: StepTimings
}

@inline(__always) func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

/// MoCo (He et al. 2020) on one rank: a query encoder trained by SGD, a momentum key encoder,
/// the global key queue, and the collectives of data-parallel training through a `Communicator`.
///
/// One step, in the official order:
///  1. q = normalize(f_q(x_q))                          (BatchNorm on batch statistics)
///  2. θ_k ← m·θ_k + (1 − m)·θ_q                        (parameters only)
///  3. k = normalize(f_k(shuffle(x_k))), unshuffled     (shuffle-BN across ranks)
///  4. L = CE([q·k, q·queue] / T, 0)                     (InfoNCE)
///  5. backward; gradients averaged across ranks (bucketed, overlapped with the backward pass)
///  6. enqueue the all-gathered keys of every rank, in rank order
///  7. SGD step
public final class MoCoModel {
    public let hyper: MoCoHyper
    public let query: Encoder
    public let key: Encoder
    public let queue: KeyQueue
    public let sgd: SGD
    public let comm: Communicator
    let qNorm = L2Normalize(), kNorm = L2Normalize()
    let infoNCE: InfoNCE
    let exchange = ShuffleExchange()
    private var shuffled = FloatBuffer(count: 0)
    private var keysOwned = FloatBuffer(count: 0), keysOther = FloatBuffer(count: 0)
    private var gathered = FloatBuffer(count: 0), symmetricKeys = FloatBuffer(count: 0)
    private var savedGrads = FloatBuffer(count: 0)
    private var reducer: CommStatReducer?
    public private(set) var localBatch = 0
    private var imageShape = (c: 0, h: 0, w: 0)

    public init(hyper: MoCoHyper, seed: UInt64, comm: Communicator) {
        self.hyper = hyper
        self.comm = comm
        query = Encoder(architecture: hyper.architecture, head: hyper.head, inChannels: hyper.inChannels, dim: hyper.dim)
        // The key encoder runs strictly between the query's forward and loss, never alongside
        // it, so it shares the query's convolution workspace.
        key = Encoder(architecture: hyper.architecture, head: hyper.head, inChannels: hyper.inChannels, dim: hyper.dim,
                      trainable: false, workspace: query.workspace)
        query.initialize(seed: seed)
        key.copyState(from: query)
        query.bnSplits = hyper.bnSplits
        key.bnSplits = hyper.bnSplits
        if hyper.syncBN {
            let r = CommStatReducer(comm: comm)
            reducer = r
            query.setBatchStatReducer(r)
        }
        queue = KeyQueue(dim: hyper.dim, size: hyper.queueSize, seed: seed)
        sgd = SGD(query.params, momentum: hyper.sgdMomentum, weightDecay: hyper.weightDecay)
        infoNCE = InfoNCE(dim: hyper.dim, queueSize: hyper.queueSize)
    }

    /// This rank's keys of the last step, [n, dim] (tests).
    var keysForTesting: [Float] { keysOwned.array }

    /// Plans every buffer for a local batch of `n` images of c x h x w.
    public func plan(localBatch n: Int, channels c: Int, height h: Int, width w: Int) {
        if n == localBatch && (c, h, w) == imageShape { return }
        query.plan(batch: n, height: h, width: w, backward: true)
        // The key forward ends before the query forward begins: its activations live in the
        // query encoder's gradient scratch.
        key.plan(batch: n, height: h, width: w, backward: false, borrowing: query)
        qNorm.plan(rows: n, dim: hyper.dim, backward: true)
        kNorm.plan(rows: n, dim: hyper.dim, backward: false)
        infoNCE.plan(rows: n)
        shuffled = FloatBuffer(count: n * c * h * w)
        keysOwned = FloatBuffer(count: n * hyper.dim)
        keysOther = FloatBuffer(count: n * hyper.dim)
        let perRank = (hyper.symmetric ? 2 : 1) * n * hyper.dim
        gathered = FloatBuffer(count: comm.size * perRank)
        if hyper.symmetric {
            savedGrads = FloatBuffer(count: query.params.count)
            symmetricKeys = FloatBuffer(count: perRank)
        }
        localBatch = n; imageShape = (c, h, w)
    }

    /// Keys of `crops` [n, C, H, W] with the key encoder, shuffled across ranks for BatchNorm
    /// when enabled: keys: [n, dim] in sample order.
    func computeKeys(_ crops: UnsafePointer<Float>, perm: [Int]?, into keys: UnsafeMutablePointer<Float>) throws {
        let n = localBatch, D = hyper.dim
        let S = imageShape.c * imageShape.h * imageShape.w
        if let perm, hyper.shuffleBN {
            let plan = ShufflePlan(perm: perm, worldSize: comm.size, rank: comm.rank)
            try exchange.shuffle(crops, into: shuffled.ptr, sampleSize: S, plan: plan, comm: comm)
            key.forward(shuffled.ptr, training: true)
            kNorm.forward(key.projection)
            try exchange.unshuffle(kNorm.y.ptr, into: keys, dim: D, plan: plan, comm: comm)
        } else {
            key.forward(crops, training: true)
            kNorm.forward(key.projection)
            keys.update(from: kNorm.y.ptr, count: n * D)
        }
    }

    /// Query forward, loss and backward for one (query crop, key) pairing; gradients in
    /// `query.params.grads` (allreduce started through `onReady` when given).
    func contrast(_ imQ: UnsafePointer<Float>, keys: UnsafePointer<Float>, timings t: inout StepTimings,
                  onReady: ((Int) -> Void)?) -> (Double, Double) {
        var t0 = now()
        query.forward(imQ, training: true)
        qNorm.forward(query.projection)
        var t1 = now(); t.queryForward += t1 - t0; t0 = t1
        let r = infoNCE.forwardBackward(q: qNorm.y.ptr, k: keys, queue: queue.keys.ptr, temperature: hyper.temperature)
        qNorm.backward(infoNCE.dQ.ptr)
        t1 = now(); t.loss += t1 - t0; t0 = t1
        query.backward(qNorm.dX.ptr, onGradientsReady: onReady)
        t.backward += now() - t0
        return r
    }

    /// One training step on this rank's crops.
    /// - Parameters:
    ///   - imQ, imK: [n, C, H, W], this rank's contiguous slice of the global batch.
    ///   - perm: the shuffle-BN permutation of the global batch (identical on every rank).
    public func step(imQ: UnsafePointer<Float>, imK: UnsafePointer<Float>, perm: [Int], lr: Float) throws -> StepResult {
        var t = StepTimings()
        let n = localBatch, D = hyper.dim, W = comm.size
        precondition(n > 0, "MoCoModel.step before plan")
        var t0 = now()
        momentumUpdate(key: key.params, query: query.params, m: hyper.momentum)
        try computeKeys(imK, perm: perm, into: keysOwned.ptr)
        t.keyForward = now() - t0

        let loss: Double, acc: Double
        let grads = query.params.grads.ptr
        var requests: [CommRequest] = []
        if hyper.symmetric {
            // L = ctr(q1, k2) + ctr(q2, k1) (MoCo CIFAR demo; Chen, Xie, He 2021 eq. 2)
            t0 = now()
            try computeKeys(imQ, perm: perm, into: keysOther.ptr)
            t.keyForward += now() - t0
            let (l1, a1) = contrast(imQ, keys: keysOwned.ptr, timings: &t, onReady: nil)
            savedGrads.copy(from: query.params.grads)
            let (l2, a2) = contrast(imK, keys: keysOther.ptr, timings: &t, onReady: nil)
            BLAS.axpy(n: query.params.count, alpha: 1, x: savedGrads.ptr, y: grads)
            loss = l1 + l2; acc = (a1 + a2) / 2
            if W > 1 { requests.append(try comm.iallreduce(grads, count: query.params.count, op: .sum)) }
        } else {
            var pendingEnd = query.params.count
            var startError: Error?
            let bucket = hyper.bucketFloats
            let onReady: ((Int) -> Void)? = W == 1 ? nil : { offset in
                // Give MPI a chance to progress the buckets already started (no progress thread).
                for r in requests where !r.isComplete { _ = try? r.test() }
                guard startError == nil, pendingEnd - offset >= bucket || offset == 0 else { return }
                do { requests.append(try self.comm.iallreduce(grads + offset, count: pendingEnd - offset, op: .sum)) }
                catch { startError = error }
                pendingEnd = offset
            }
            (loss, acc) = contrast(imQ, keys: keysOwned.ptr, timings: &t, onReady: onReady)
            if let startError { throw startError }
        }
        t0 = now()
        for r in requests { try r.wait() }
        if W > 1 { BLAS.scal(n: query.params.count, alpha: 1 / Float(W), x: grads) }
        t.allreduceWait = now() - t0

        t0 = now()
        let perRank = hyper.symmetric ? 2 * n : n
        var local = UnsafePointer(keysOwned.ptr)
        if hyper.symmetric {
            // enqueue cat([k1, k2]): keys of the first crops (computed second), then of the second
            symmetricKeys.ptr.update(from: keysOther.ptr, count: n * D)
            (symmetricKeys.ptr + n * D).update(from: keysOwned.ptr, count: n * D)
            local = UnsafePointer(symmetricKeys.ptr)
        }
        try comm.allgather(local, count: perRank * D, into: gathered.ptr)
        queue.enqueue(gathered.ptr, count: W * perRank)
        t.enqueue = now() - t0

        t0 = now()
        sgd.step(lr: lr)
        t.optimizer = now() - t0
        return StepResult(loss: loss, acc1: acc, timings: t)
    }
}

/// Synchronised BatchNorm statistics through the communicator.
final class CommStatReducer: BatchStatReducer {
    let comm: Communicator
    init(comm: Communicator) { self.comm = comm }
    var workers: Int { comm.size }
    func sumAcrossWorkers(_ values: UnsafeMutablePointer<Double>, count: Int) {
        do { try comm.allreduce(values, count: count, op: .sum) }
        catch { comm.abort("synchronised BatchNorm allreduce failed: \(error)", code: 1) }
    }
}
