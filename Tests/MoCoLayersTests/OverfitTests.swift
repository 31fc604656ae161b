import XCTest
import MoCoTensor
import MoCoOptim
@testable import MoCoLayers

final class OverfitTests: XCTestCase {
    /// A tiny ResNet-20 (projection used as 4 class logits) trained with SGD must fit 8 random
    /// images with random labels: the loss falls from ~log 4 to near 0.
    func testTinyNetworkOverfitsTinyBatch() {
        var rng = Xoshiro(seed: 41)
        let e = Encoder(architecture: .resnet20, head: .linear, inChannels: 1, dim: 4)
        e.initialize(seed: 2)
        e.plan(batch: 8, height: 8, width: 8, backward: true)
        let x = randomBuffer(8 * 64, &rng)
        let labels = (0..<8).map { $0 % 4 }
        let sgd = SGD(e.params, momentum: 0.9, weightDecay: 0)
        let d = FloatBuffer(count: 8 * 4)
        var first = 0.0, last = 0.0
        for step in 0..<150 {
            e.forward(x.ptr, training: true)
            let (loss, _) = CrossEntropy.forwardBackward(logits: e.projection, rows: 8, classes: 4, targets: { labels[$0] }, dLogits: d.ptr)
            if step == 0 { first = loss }
            last = loss
            e.backward(d.ptr)
            sgd.step(lr: 0.05)
        }
        XCTAssertGreaterThan(first, 0.8)
        XCTAssertLessThan(last, 0.05, "loss \(first) -> \(last)")
    }
}
