import XCTest
import MoCoTensor
@testable import MoCoOptim

final class SGDTests: XCTestCase {
    /// Two steps checked against numbers computed by hand with PyTorch's update rule.
    func testTwoStepsByHand() {
        let store = ParameterStore()
        store.register("w", shape: [2])
        store.finalize()
        store.set("w", [1, -2])
        let sgd = SGD(store, momentum: 0.9, weightDecay: 0.1)
        store.grads.ptr[0] = 0.5; store.grads.ptr[1] = 1
        sgd.step(lr: 0.1)
        // d = g + 0.1 w = [0.6, 0.8]; v = d; w = [1 - 0.06, -2 - 0.08]
        XCTAssertEqual(store.array("w")[0], 0.94, accuracy: 1e-6)
        XCTAssertEqual(store.array("w")[1], -2.08, accuracy: 1e-6)
        store.grads.ptr[0] = -1; store.grads.ptr[1] = 0
        sgd.step(lr: 0.05)
        // d = [-1 + 0.094, -0.208]; v = 0.9·[0.6, 0.8] + d = [-0.366, 0.512]; w -= 0.05 v
        XCTAssertEqual(store.array("w")[0], 0.94 + 0.05 * 0.366, accuracy: 1e-6)
        XCTAssertEqual(store.array("w")[1], -2.08 - 0.05 * 0.512, accuracy: 1e-6)
    }

    /// The pass split over workers (a store large enough for 3 ranges, each a partial one):
    /// every weight and momentum value has the bits of one worker, first step and later ones.
    func testThreadsGiveTheSameBits() {
        let n = 3 * (1 << 16) + 1234
        func run(threads: Int) -> ([Float], [Float]) {
            let store = ParameterStore()
            store.register("w", shape: [n])
            store.finalize()
            var rng = Xoshiro(seed: 5)
            for i in 0..<n { store.values.ptr[i] = rng.normal() }
            let sgd = SGD(store, momentum: 0.9, weightDecay: 1e-4, threads: threads)
            for step in 0..<3 {
                for i in 0..<n { store.grads.ptr[i] = rng.normal() }
                sgd.step(lr: 0.03 / Float(step + 1))
            }
            return (store.array("w"), sgd.velocity.array)
        }
        let one = run(threads: 1)
        for t in [2, 3] {
            let many = run(threads: t)
            XCTAssertEqual(many.0.map(\.bitPattern), one.0.map(\.bitPattern), "weights on \(t) threads")
            XCTAssertEqual(many.1.map(\.bitPattern), one.1.map(\.bitPattern), "momentum on \(t) threads")
        }
    }

    func testCosineAndStepSchedules() {
        XCTAssertEqual(LRSchedule.cosine.lr(base: 0.06, epoch: 0, totalEpochs: 10), 0.06, accuracy: 1e-12)
        XCTAssertEqual(LRSchedule.cosine.lr(base: 0.06, epoch: 5, totalEpochs: 10), 0.03, accuracy: 1e-12)
        XCTAssertEqual(LRSchedule.cosine.lr(base: 0.06, epoch: 10, totalEpochs: 10), 0, accuracy: 1e-12)
        let s = LRSchedule.step(milestones: [120, 160])
        XCTAssertEqual(s.lr(base: 0.03, epoch: 119.9, totalEpochs: 200), 0.03, accuracy: 1e-12)
        XCTAssertEqual(s.lr(base: 0.03, epoch: 120, totalEpochs: 200), 0.003, accuracy: 1e-12)
        XCTAssertEqual(s.lr(base: 0.03, epoch: 170, totalEpochs: 200), 0.0003, accuracy: 1e-12)
        XCTAssertEqual(LRSchedule.cosine.lr(base: 1, epoch: 0.5, totalEpochs: 100, warmupEpochs: 2),
                       0.25 * 0.5 * (1 + cos(Double.pi * 0.005)), accuracy: 1e-12)
    }
}
