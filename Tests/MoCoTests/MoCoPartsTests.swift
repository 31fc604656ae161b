import XCTest
import MoCoTensor
import MoCoLayers
import MoCoComm
@testable import MoCo

final class MoCoPartsTests: XCTestCase {
    func testLossIsLogKPlusOneWhenAllLogitsEqual() {
        let dim = 4, K = 10, n = 3
        let q = FloatBuffer(count: n * dim), k = FloatBuffer(count: n * dim), queue = FloatBuffer(count: dim * K)
        for i in 0..<n { q.ptr[i * dim] = 1; k.ptr[i * dim] = 1 }
        for j in 0..<K { queue.ptr[0 * K + j] = 1 }           // every queue key equals every positive key
        let nce = InfoNCE(dim: dim, queueSize: K)
        nce.plan(rows: n)
        let (loss, _) = nce.forwardBackward(q: q.ptr, k: k.ptr, queue: queue.ptr, temperature: 0.07)
        XCTAssertEqual(loss, log(Double(K + 1)), accuracy: 1e-6)
    }

    /// dL/dq of InfoNCE against central finite differences (tolerance as the layer tests: 2% of
    /// the largest gradient entry, h = 1e-3 on a loss computed from float32 logits).
    func testInfoNCEGradient() {
        var rng = Xoshiro(seed: 51)
        let dim = 6, K = 9, n = 4
        func unit(_ b: FloatBuffer, rows: Int) { l2NormalizeRows(b.ptr, rows: rows, dim: dim) }
        let q = FloatBuffer(count: n * dim), k = FloatBuffer(count: n * dim), queueT = FloatBuffer(count: K * dim)
        for i in 0..<q.count { q.ptr[i] = rng.normal(); k.ptr[i] = rng.normal() }
        for i in 0..<queueT.count { queueT.ptr[i] = rng.normal() }
        unit(k, rows: n); unit(queueT, rows: K)
        let queue = FloatBuffer(count: dim * K)
        for j in 0..<K { for d in 0..<dim { queue.ptr[d * K + j] = queueT.ptr[j * dim + d] } }
        let nce = InfoNCE(dim: dim, queueSize: K)
        nce.plan(rows: n)
        _ = nce.forwardBackward(q: q.ptr, k: k.ptr, queue: queue.ptr, temperature: 0.2)
        let analytic = nce.dQ.array
        let scale = analytic.map { abs($0) }.max()!
        XCTAssertGreaterThan(scale, 0)
        let h: Float = 1e-3
        for i in 0..<(n * dim) {
            let old = q.ptr[i]
            q.ptr[i] = old + h; let lp = nce.forwardBackward(q: q.ptr, k: k.ptr, queue: queue.ptr, temperature: 0.2).loss
            q.ptr[i] = old - h; let lm = nce.forwardBackward(q: q.ptr, k: k.ptr, queue: queue.ptr, temperature: 0.2).loss
            q.ptr[i] = old
            XCTAssertEqual((lp - lm) / Double(2 * h), Double(analytic[i]), accuracy: Double(2e-2 * scale + 1e-4), "dq[\(i)]")
        }
    }

    func testMomentumUpdateExtremes() {
        let q = ParameterStore(), k = ParameterStore(withGradients: false)
        q.register("w", shape: [3]); k.register("w", shape: [3]); q.finalize(); k.finalize()
        q.set("w", [1, 2, 3]); k.set("w", [-1, 0, 5])
        momentumUpdate(key: k, query: q, m: 1)
        XCTAssertEqual(k.array("w"), [-1, 0, 5])
        momentumUpdate(key: k, query: q, m: 0.5)
        XCTAssertEqual(k.array("w"), [0, 1, 4])
        momentumUpdate(key: k, query: q, m: 0)
        XCTAssertEqual(k.array("w"), [1, 2, 3])
        // Split over workers: the bits of one worker.
        let n = 2 * (1 << 16) + 777
        let q2 = ParameterStore(), k1 = ParameterStore(withGradients: false), k3 = ParameterStore(withGradients: false)
        for s in [q2, k1, k3] { s.register("w", shape: [n]); s.finalize() }
        var rng = Xoshiro(seed: 9)
        for i in 0..<n { q2.values.ptr[i] = rng.normal(); k1.values.ptr[i] = rng.normal(); k3.values.ptr[i] = k1.values.ptr[i] }
        momentumUpdate(key: k1, query: q2, m: 0.99)
        momentumUpdate(key: k3, query: q2, m: 0.99, threads: 3)
        XCTAssertEqual(k3.array("w").map(\.bitPattern), k1.array("w").map(\.bitPattern))
        XCTAssertNotEqual(k1.array("w")[0], q2.array("w")[0])
    }

    func testQueueOrderAndWrapAround() {
        let dim = 2, K = 5
        let queue = KeyQueue(dim: dim, size: K, seed: 1)
        // Initial columns are unit vectors.
        for j in 0..<K { XCTAssertEqual(hypot(queue.keys.ptr[j], queue.keys.ptr[K + j]), 1, accuracy: 1e-6) }
        func keys(_ vals: [Float]) -> FloatBuffer { FloatBuffer(vals.flatMap { [$0, -$0] }) }
        let a = keys([1, 2, 3]), b = keys([4, 5, 6]), c = keys([7, 8, 9, 10, 11, 12, 13])
        queue.enqueue(a.ptr, count: 3)
        XCTAssertEqual(queue.pointer, 3)
        queue.enqueue(b.ptr, count: 3)   // writes columns 3, 4, then wraps to 0
        XCTAssertEqual(queue.pointer, 1)
        XCTAssertEqual(Array(queue.keys.array[0..<K]), [6, 2, 3, 4, 5])
        XCTAssertEqual(Array(queue.keys.array[K..<(2 * K)]), [-6, -2, -3, -4, -5])
        queue.enqueue(c.ptr, count: 7) // more than K: columns 1,2,3,4,0,1,2; the last K survive
        XCTAssertEqual(queue.pointer, 3)
        XCTAssertEqual(Array(queue.keys.array[0..<K]), [11, 12, 13, 9, 10])
    }

    /// Simulates W ranks moving crops and keys per their shuffle-BN plans: every crop reaches the
    /// rank and position perm prescribes, and unshuffling returns each key to its owner —
    /// shuffle then unshuffle is the identity, for several world sizes.
    func testShuffleBNPlanAcrossRanksIsExactAndInvertible() {
        for W in [1, 2, 3, 4] {
            let n = 3, B = W * n
            var rng = Xoshiro(seed: UInt64(W))
            let perm = rng.permutation(B)
            let plans = (0..<W).map { ShuffleBN.Plan(perm: perm, worldSize: W, rank: $0) }
            // crop of global sample g is the value g; rank r holds samples r*n ..< (r+1)*n.
            var shuffled = [[Int]](repeating: [Int](repeating: -1, count: n), count: W)
            for dst in 0..<W {
                for src in 0..<W {
                    let sent = plans[src].sendSamples[dst].map { src * n + $0 }
                    let positions = plans[dst].recvPositions[src]
                    XCTAssertEqual(sent.count, positions.count)
                    for (g, j) in zip(sent, positions) { shuffled[dst][j] = g }
                }
            }
            XCTAssertEqual(shuffled.flatMap { $0 }, perm, "W=\(W): rank r must hold perm[r*n..<(r+1)*n]")
            // Return: key at shuffled position j (value perm[j]) goes back to its owner.
            var back = [[Int]](repeating: [Int](repeating: -1, count: n), count: W)
            for owner in 0..<W {
                for src in 0..<W {
                    let sent = plans[src].recvPositions[owner].map { shuffled[src][$0] }
                    for (v, i) in zip(sent, plans[owner].sendSamples[src]) { back[owner][i] = v }
                }
            }
            XCTAssertEqual(back.flatMap { $0 }, Array(0..<B), "W=\(W): unshuffle must restore sample order")
        }
    }

    /// The exchange itself through a communicator (one process): shuffle then unshuffle of
    /// real buffers is the identity.
    func testShuffleBNRoundTrip() throws {
        let comm = SingleProcessCommunicator()
        let n = 6, S = 5
        var rng = Xoshiro(seed: 9)
        let perm = rng.permutation(n)
        let plan = ShuffleBN.Plan(perm: perm, worldSize: 1, rank: 0)
        let x = FloatBuffer((0..<(n * S)).map { Float($0) })
        let s = FloatBuffer(count: n * S), back = FloatBuffer(count: n * S)
        let ex = ShuffleBN(comm: comm)
        try ex.shuffle(x.ptr, into: s.ptr, rowSize: S, plan: plan)
        for j in 0..<n { XCTAssertEqual(s.ptr[j * S], Float(perm[j] * S)) }
        try ex.unshuffle(s.ptr, into: back.ptr, rowSize: S, plan: plan)
        XCTAssertEqual(back.array, x.array)
        // keys(of:): the encoder sees the shuffled rows, and its outputs return to sample order.
        let keys = FloatBuffer(count: n * S)
        var seen: [Float] = []
        try ex.keys(of: x.ptr, sampleSize: S, dim: S, perm: perm, into: keys.ptr) { rows in
            seen = Array(UnsafeBufferPointer(start: rows, count: n * S))
            return rows
        }
        XCTAssertEqual(seen, s.array)
        XCTAssertEqual(keys.array, x.array)
    }
}
