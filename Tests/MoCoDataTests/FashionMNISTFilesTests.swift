import XCTest
import MoCoData

/// The real Fashion-MNIST files of the Debian package `dataset-fashion-mnist`, if installed.
final class FashionMNISTFilesTests: XCTestCase {
    func testRealFiles() throws {
        let dir = "/usr/share/datasets/fashion-mnist"
        try XCTSkipUnless(FileManager.default.fileExists(atPath: dir), "dataset-fashion-mnist not installed")
        for (split, n) in [(Split.train, 60000), (.test, 10000)] {
            let ds = try Dataset.load(.fashionMNIST, split: split, directory: nil)
            XCTAssertEqual(ds.count, n)
            XCTAssertEqual([ds.channels, ds.height, ds.width], [1, 28, 28])
            XCTAssertEqual(ds.labels.min(), 0)
            XCTAssertEqual(ds.labels.max(), 9)
            var perClass = [Int](repeating: 0, count: 10)
            for l in ds.labels { perClass[Int(l)] += 1 }
            XCTAssertEqual(Set(perClass), [n / 10])   // Fashion-MNIST is exactly balanced
            if split == .train {
                // The published mean/std are those of the training images.
                let s = Dataset.channelStatistics(pixels: ds.pixels, channels: 1, planeSize: 784)
                XCTAssertEqual(s.mean[0], 0.2860, accuracy: 1e-3)
                XCTAssertEqual(s.std[0], 0.3530, accuracy: 1e-3)
            }
        }
    }
}
