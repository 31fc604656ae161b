import XCTest
import MoCoTensor
import MoCoComm
@testable import MoCo

final class SymmetricLossTests: XCTestCase {
    /// The symmetric step equals the sum of the two one-way steps ctr(q1, k2) + ctr(q2, k1)
    /// started from the same state: loss and query gradients add up, and the queue receives
    /// [k1; k2]. Tolerance 1e-5 of each tensor's largest entry: the two sides compute the same
    /// float32 operations, except that the symmetric one adds the two gradients at the end.
    func testSymmetricStepIsTheSumOfBothDirections() throws {
        var h = MoCoConfig()
        h.architecture = .resnet20; h.head = .mlp; h.dim = 16; h.queueSize = 24
        h.bnSplits = 2
        func model(symmetric: Bool) -> MoCoModel {
            var hh = h; hh.symmetric = symmetric
            let m = MoCoModel(config: hh, inChannels: 1, seed: 4, comm: SingleProcessCommunicator())
            m.plan(localBatch: 4, channels: 1, height: 8, width: 8)
            return m
        }
        var rng = Xoshiro(seed: 17)
        let im1 = FloatBuffer(count: 4 * 64), im2 = FloatBuffer(count: 4 * 64)
        for i in 0..<im1.count { im1.ptr[i] = rng.normal(); im2.ptr[i] = rng.normal() }
        let perm = [2, 0, 3, 1]
        let sym = model(symmetric: true), a = model(symmetric: false), b = model(symmetric: false)
        let rs = try sym.step(imQ: im1.ptr, imK: im2.ptr, perm: perm, lr: 0.1)
        let ra = try a.step(imQ: im1.ptr, imK: im2.ptr, perm: perm, lr: 0.1)   // ctr(q1, k2)
        let rb = try b.step(imQ: im2.ptr, imK: im1.ptr, perm: perm, lr: 0.1)   // ctr(q2, k1)
        XCTAssertEqual(rs.loss, ra.loss + rb.loss, accuracy: 1e-5 * rs.loss)
        let gs = sym.query.params.grads.array, ga = a.query.params.grads.array, gb = b.query.params.grads.array
        let scale = gs.map { abs($0) }.max()!
        XCTAssertGreaterThan(scale, 0)
        for i in 0..<gs.count { XCTAssertEqual(gs[i], ga[i] + gb[i], accuracy: 1e-5 * scale) }
        // Queue: 8 new columns, first k1 (= b's keys), then k2 (= a's keys).
        XCTAssertEqual(sym.queue.pointer, 8)
        let K = h.queueSize
        for d in 0..<h.dim {
            for j in 0..<4 {
                XCTAssertEqual(sym.queue.keys.ptr[d * K + j], b.queue.keys.ptr[d * K + j], accuracy: 1e-5)
                XCTAssertEqual(sym.queue.keys.ptr[d * K + 4 + j], a.queue.keys.ptr[d * K + j], accuracy: 1e-5)
            }
        }
    }
}
