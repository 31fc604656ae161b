import XCTest
import MoCoTensor
@testable import MoCo

/// `LinearEval` (`moco lincls`): the classifier learns a linearly separable problem, and the
/// weight decay is chosen on held-out training rows, never on the test rows.
final class LinearEvalTests: XCTestCase {
    /// `classes` Gaussian clusters in `d` dimensions, centres 4 apart on the axes, unit noise:
    /// features [n, d] and labels.
    func clusters(n: Int, d: Int, classes: Int, seed: UInt64) -> (FloatBuffer, [Int32]) {
        var rng = Xoshiro(seed: seed)
        let f = FloatBuffer(count: n * d)
        var labels: [Int32] = []
        for i in 0..<n {
            let c = i % classes
            labels.append(Int32(c))
            for j in 0..<d { f.ptr[i * d + j] = rng.normal() + (j == c ? 4 : 0) }
        }
        return (f, labels)
    }

    func testSeparableClustersAreLearned() {
        let (tr, trL) = clusters(n: 600, d: 8, classes: 3, seed: 1), (te, teL) = clusters(n: 300, d: 8, classes: 3, seed: 2)
        var c = LinearEvalConfig()
        c.epochs = 10; c.batchSize = 64
        let r = LinearEval.run(trainFeatures: tr, trainLabels: trL, testFeatures: te, testLabels: teL, dim: 8, classes: 3, config: c)
        // Centres 4·√2 apart with unit noise: the Bayes error is Φ(−2√2) ≈ 0.2% per pair.
        XCTAssertGreaterThan(r.test, 97)
        XCTAssertGreaterThan(r.train, 97)
        // Labels that carry nothing about the features: chance on the test rows.
        var g = Xoshiro(seed: 9)
        let shuffled = trL.shuffled(using: &g)
        let noise = LinearEval.run(trainFeatures: tr, trainLabels: shuffled, testFeatures: te, testLabels: teL, dim: 8, classes: 3, config: c)
        XCTAssertLessThan(noise.test, 50)
    }

    /// A weight decay so large that it keeps the weights near zero loses on the held-out rows;
    /// on a tie the smaller one wins; the choice is a function of the seed, and the test rows are
    /// not an argument at all.
    func testWeightDecayIsChosenOnHeldOutRows() {
        let (tr, trL) = clusters(n: 600, d: 8, classes: 3, seed: 3)
        var c = LinearEvalConfig()
        c.epochs = 5; c.batchSize = 64
        var seen: [Float] = []
        let s = LinearEval.selectWeightDecay([30, 0], trainFeatures: tr, trainLabels: trL, dim: 8, classes: 3, config: c,
                                             validationFraction: 0.2) { wd, _ in seen.append(wd) }
        XCTAssertEqual(seen, [30, 0])
        XCTAssertEqual(s.validation.map(\.weightDecay), [30, 0])
        XCTAssertEqual(s.chosen, 0)
        XCTAssertGreaterThan(s.validation[1].top1, 95)
        XCTAssertLessThan(s.validation[0].top1, s.validation[1].top1)
        // 20% of 600 rows held out: accuracies are multiples of 1/120.
        for v in s.validation { XCTAssertEqual((v.top1 * 1.2).rounded(), v.top1 * 1.2, accuracy: 1e-9) }
        // Two values that both separate the clusters perfectly: the smaller is chosen.
        let tie = LinearEval.selectWeightDecay([1e-6, 0], trainFeatures: tr, trainLabels: trL, dim: 8, classes: 3, config: c,
                                               validationFraction: 0.2)
        if tie.validation[0].top1 == tie.validation[1].top1 { XCTAssertEqual(tie.chosen, 0) }
        let again = LinearEval.selectWeightDecay([30, 0], trainFeatures: tr, trainLabels: trL, dim: 8, classes: 3, config: c,
                                                 validationFraction: 0.2)
        XCTAssertEqual(again.validation.map(\.top1), s.validation.map(\.top1))
    }
}
