import XCTest
import Foundation
@testable import MoCo

/// `moco temperature`'s arithmetic (`SoftmaxScores`): the softmax of [s₊, s_j] / T, written out.
final class SoftmaxScoresTests: XCTestCase {
    /// One query, positive 0.8, negatives 0.5 and 99 x 0.0: the scores by hand at T = 0.05 and
    /// T = 10; at the small T the one hard negative takes nearly all the negatives' mass, at the
    /// large T all 100 weigh nearly alike.
    func testScoresMatchTheFormula() {
        let K = 100
        let neg = [Float(0.5)] + [Float](repeating: 0, count: K - 1)
        let s = SoftmaxScores.summarize(positive: [0.8], negatives: neg, k: K, temperatures: [0.05, 10])
        for (i, t) in [0.05, 10].enumerated() {
            let e = [exp(Double(Float(0.8)) / t), exp(Double(Float(0.5)) / t)] + [Double](repeating: 1, count: K - 1)
            let z = e.reduce(0, +)
            XCTAssertEqual(s[i].meanPositive, e[0] / z, accuracy: 1e-12)
            XCTAssertEqual(s[i].meanLogPositive, log(e[0] / z), accuracy: 1e-9)
            XCTAssertEqual(s[i].meanTopNegative, e[1] / z, accuracy: 1e-12)
            let q = e.dropFirst().map { $0 / (z - e[0]) }
            XCTAssertEqual(s[i].effectiveNegatives, exp(-q.map { $0 * log($0) }.reduce(0, +)), accuracy: 1e-9)
            XCTAssertEqual(s[i].topPercentShare, q[0], accuracy: 1e-12)
            XCTAssertEqual(s[i].positive.counts.reduce(0, +), 1)
            XCTAssertEqual(s[i].negative.counts.reduce(0, +), K)
        }
        XCTAssertLessThan(s[0].effectiveNegatives, 1.1)   // 1.05: 99 light negatives at 1/22125 each
        XCTAssertGreaterThan(s[1].effectiveNegatives, 99.5)
    }

    /// The log10 bins: 10^-3.1 falls in [10^-3.25, 10^-3), scores under 10^-12 in the first bin.
    func testHistogramBins() {
        var h = SoftmaxScores.Histogram(minLog10: -12, binsPerDecade: 4)
        h.add(pow(10, -3.1)); h.add(1e-20); h.add(1)
        let b = (12 - 4) * 4 + 3   // [10^-3.25, 10^-3)
        XCTAssertEqual(h.counts[b], 1)
        XCTAssertEqual(h.edges(b).lo, pow(10, -3.25), accuracy: 1e-12)
        XCTAssertEqual(h.counts[0], 1)
        XCTAssertEqual(h.counts[h.counts.count - 1], 1)
    }
}
