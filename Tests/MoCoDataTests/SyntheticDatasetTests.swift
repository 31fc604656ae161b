import XCTest
import MoCoData

final class SyntheticDatasetTests: XCTestCase {
    func testDeterministicAndSeeded() {
        let a = Dataset.synthetic(split: .train, count: 60)
        let b = Dataset.synthetic(split: .train, count: 60)
        XCTAssertEqual(a.pixels, b.pixels)
        XCTAssertEqual(a.labels, b.labels)
        XCTAssertEqual(a.mean, b.mean)
        XCTAssertNotEqual(a.pixels, Dataset.synthetic(split: .train, count: 60, seed: 1).pixels)
        XCTAssertNotEqual(a.pixels, Dataset.synthetic(split: .test, count: 60).pixels)
        // A prefix of a larger dataset is the smaller one.
        let big = Dataset.synthetic(split: .train, count: 90)
        XCTAssertEqual(Array(big.pixels[0..<a.pixels.count]), a.pixels)
    }

    func testDefaultsShapeBalanceAndStatistics() throws {
        let train = try Dataset.load(.synthetic, split: .train, directory: nil)
        let test = try Dataset.load(.synthetic, split: .test, directory: "/ignored")
        XCTAssertEqual([train.count, test.count], [6000, 1000])
        XCTAssertEqual([train.channels, train.height, train.width, train.numClasses], [1, 28, 28, 10])
        var perClass = [Int](repeating: 0, count: 10)
        for l in train.labels { perClass[Int(l)] += 1 }
        XCTAssertEqual(perClass, [Int](repeating: 600, count: 10))
        let s = Dataset.channelStatistics(pixels: train.pixels, channels: 1, planeSize: 784)
        XCTAssertEqual(train.mean, s.mean)
        XCTAssertEqual(train.std, s.std)
        XCTAssertTrue(train.mean[0] > 0.1 && train.mean[0] < 0.6, "mean \(train.mean)")
        XCTAssertTrue(train.std[0] > 0.08, "std \(train.std)")
        let odd = Dataset.synthetic(split: .test, count: 23, channels: 3, height: 20, width: 24, numClasses: 4)
        XCTAssertEqual(odd.pixels.count, 23 * 3 * 20 * 24)
        XCTAssertEqual(odd.mean.count, 3)
        var counts = [Int](repeating: 0, count: 4)
        for l in odd.labels { counts[Int(l)] += 1 }
        XCTAssertEqual(counts, [6, 6, 6, 5])
    }

    /// Learnable but not trivial: a nearest-class-mean classifier on raw pixels (no feature
    /// learning) must beat chance (10%) clearly, yet stay far from perfect, because position,
    /// scale, rotation, contrast and noise vary.
    func testClassesAreDistinctButNotTrivial() {
        let train = Dataset.synthetic(split: .train, count: 2000)
        let test = Dataset.synthetic(split: .test, count: 500)
        let d = 784
        var centroids = [Float](repeating: 0, count: 10 * d)
        var counts = [Float](repeating: 0, count: 10)
        for i in 0..<train.count {
            let l = Int(train.labels[i]); counts[l] += 1
            for k in 0..<d { centroids[l * d + k] += Float(train.pixels[i * d + k]) }
        }
        for l in 0..<10 { for k in 0..<d { centroids[l * d + k] /= counts[l] } }
        var correct = 0
        for i in 0..<test.count {
            var best = 0, bestD = Float.infinity
            for l in 0..<10 {
                var s: Float = 0
                for k in 0..<d { let e = Float(test.pixels[i * d + k]) - centroids[l * d + k]; s += e * e }
                if s < bestD { bestD = s; best = l }
            }
            if best == Int(test.labels[i]) { correct += 1 }
        }
        let accuracy = Double(correct) / Double(test.count)
        print("synthetic nearest-centroid accuracy: \(accuracy)")
        XCTAssertLessThan(accuracy, 0.9)
        XCTAssertGreaterThan(accuracy, 0.1)
    }
}
