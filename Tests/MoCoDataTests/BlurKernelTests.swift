import XCTest
import Foundation
import MoCoTensor
@testable import MoCoData

/// `--blur-kernel auto|full|K`: parsing, configuration coding, the support each resolves to,
/// and the replicate-edge blur against a direct 2-D sum.
final class BlurKernelTests: XCTestCase {
    func testParsingAndCoding() throws {
        XCTAssertEqual(BlurKernel("auto"), .auto)
        XCTAssertEqual(BlurKernel("full"), .full)
        XCTAssertEqual(BlurKernel("7"), .size(7))
        for bad in ["4", "0", "-3", "x", ""] { XCTAssertNil(BlurKernel(bad), bad) }
        var a = AugmentConfig.mocoV2
        a.blurKernel = .full
        let json = String(decoding: try JSONEncoder().encode(a), as: UTF8.self)
        XCTAssertTrue(json.contains(#""blurKernel":"full""#), json)
        XCTAssertEqual(try JSONDecoder().decode(AugmentConfig.self, from: Data(json.utf8)), a)
        // A configuration written before the field existed reads as it ran (auto).
        let old = json.replacingOccurrences(of: #","blurKernel":"full""#, with: "").replacingOccurrences(of: #""blurKernel":"full","#, with: "")
        XCTAssertFalse(old.contains("blurKernel"))
        XCTAssertEqual(try JSONDecoder().decode(AugmentConfig.self, from: Data(old.utf8)).blurKernel, .auto)
        XCTAssertThrowsError(try JSONDecoder().decode(AugmentConfig.self,
                                                      from: Data(json.replacingOccurrences(of: #""full""#, with: #""6""#).utf8)))
    }

    func testResolvedSupport() {
        XCTAssertTrue(BlurKernel.auto.resolve(side: 28, sigma: 2) == (3, .reflect))
        XCTAssertTrue(BlurKernel.auto.resolve(side: 224, sigma: 2) == (23, .reflect))
        XCTAssertTrue(BlurKernel.size(9).resolve(side: 28, sigma: 0.5) == (9, .reflect))
        XCTAssertTrue(BlurKernel.size(9).resolve(side: 3, sigma: 0.5) == (5, .reflect))      // at most 2 (side - 1) + 1
        XCTAssertTrue(BlurKernel.full.resolve(side: 28, sigma: 2) == (13, .replicate))       // ceil(3 * 2) = 6 each side
        XCTAssertTrue(BlurKernel.full.resolve(side: 28, sigma: 1.01) == (9, .replicate))     // ceil(3.03) = 4
        XCTAssertTrue(BlurKernel.full.resolve(side: 28, sigma: 0.1) == (3, .replicate))      // at least one tap each side
        XCTAssertTrue(BlurKernel.full.resolve(side: 4, sigma: 2) == (7, .replicate))         // at most side - 1 each side
    }

    /// Replicate edges: the separable blur equals the 2-D sum over the outer product with
    /// clamped source indices, on a random image whose kernel reaches past every edge.
    func testReplicateBlurMatchesDirectSum() {
        let h = 7, w = 10, k = 9, r = k / 2
        let kernel = gaussianKernel1D(size: k, sigma: 1.7)
        var rng = Xoshiro(seed: 5, stream: [1])
        let src = (0..<(2 * h * w)).map { _ in rng.uniform() }
        var img = src, tmp = [Float](repeating: 0, count: src.count)
        gaussianBlur(&img, tmp: &tmp, channels: 2, height: h, width: w, kernel: kernel, size: k, edge: .replicate)
        for c in 0..<2 { for y in 0..<h { for x in 0..<w {
            var s: Double = 0
            for i in 0..<k { for j in 0..<k {
                let yy = min(max(y + i - r, 0), h - 1), xx = min(max(x + j - r, 0), w - 1)
                s += Double(kernel[i]) * Double(kernel[j]) * Double(src[c * h * w + yy * w + xx])
            } }
            XCTAssertEqual(Double(img[c * h * w + y * w + x]), s, accuracy: 1e-5, "c \(c) y \(y) x \(x)")
        } } }
        // A constant image stays constant (replicated edges add no mirror weight).
        var flat = [Float](repeating: 0.3, count: h * w)
        gaussianBlur(&flat, tmp: &tmp, channels: 1, height: h, width: w, kernel: kernel, size: k, edge: .replicate)
        for v in flat { XCTAssertEqual(v, 0.3, accuracy: 1e-6) }
    }

    /// `augment` with `full` blurs a view with the resolved kernel: same crop and jitter as the
    /// unblurred parameters, then the replicate blur; and differs from `auto` for a large sigma.
    func testAugmentUsesTheConfiguredKernel() {
        let ds = Dataset.synthetic(split: .train, count: 4)
        var cfg = AugmentConfig.mocoV2
        cfg.blurProb = 1; cfg.blurSigmaMin = 1.8; cfg.blurSigmaMax = 2
        cfg.blurKernel = .full
        var rng = Xoshiro(seed: 3, stream: [9])
        let p = AugmentParams(height: ds.height, width: ds.width, config: cfg, rng: &rng)
        XCTAssertGreaterThan(p.blurSigma, 0)
        let size = ds.imageSize
        var full = [Float](repeating: 0, count: size), auto = full, manual = full
        applyAugment(ds, index: 1, params: p, config: cfg, out: &full)
        var a = cfg; a.blurKernel = .auto
        applyAugment(ds, index: 1, params: p, config: a, out: &auto)
        // Manual: the unblurred view (normalised), un-normalised, blurred, normalised again.
        var q = p; q.blurSigma = 0
        applyAugment(ds, index: 1, params: q, config: cfg, out: &manual)
        let n = ds.height * ds.width
        for c in 0..<ds.channels { for j in 0..<n { manual[c * n + j] = manual[c * n + j] * ds.std[c] + ds.mean[c] } }
        let (k, edge) = BlurKernel.full.resolve(side: min(ds.height, ds.width), sigma: p.blurSigma)
        XCTAssertEqual(edge, .replicate)
        var tmp = [Float](repeating: 0, count: size)
        gaussianBlur(&manual, tmp: &tmp, channels: ds.channels, height: ds.height, width: ds.width,
                     kernel: gaussianKernel1D(size: k, sigma: p.blurSigma), size: k, edge: edge)
        for c in 0..<ds.channels { for j in 0..<n { manual[c * n + j] = (manual[c * n + j] - ds.mean[c]) / ds.std[c] } }
        var maxDiff: Float = 0, maxAuto: Float = 0
        for j in 0..<size { maxDiff = max(maxDiff, abs(full[j] - manual[j])); maxAuto = max(maxAuto, abs(full[j] - auto[j])) }
        XCTAssertLessThan(maxDiff, 1e-4)
        XCTAssertGreaterThan(maxAuto, 0.05)
    }
}

/// `AugmentRecorder` (behind `moco augstats`) records the views the training loader makes.
final class AugmentRecorderTests: XCTestCase {
    func testRecordedViewsAreTheLoadersViews() {
        let ds = Dataset.synthetic(split: .train, count: 8)
        let cfg = AugmentConfig.mocoV2
        let r = AugmentRecorder.record(ds, config: cfg, seed: 11, epoch: 2, views: 6, dump: 6)
        let batch = TwoCropLoader.makeBatch(dataset: ds, indices: [0, 1, 2], config: cfg, seed: 11, epoch: 2, step: 0)
        let size = ds.imageSize, n = ds.height * ds.width
        for k in 0..<6 {
            let src = (k % 2 == 0 ? batch.query : batch.key).ptr + (k / 2) * size
            var maxDiff: Float = 0
            for c in 0..<ds.channels { for j in 0..<n {
                let loader = src[c * n + j] * ds.std[c] + ds.mean[c]
                maxDiff = max(maxDiff, abs(loader - r.dumped[k][c * n + j]))
            } }
            XCTAssertLessThan(maxDiff, 1e-6, "view \(k)")
            var rng = TwoCropLoader.viewGenerator(seed: 11, epoch: 2, index: k / 2, view: k % 2)
            XCTAssertEqual(r.params[k], AugmentParams(height: ds.height, width: ds.width, config: cfg, rng: &rng))
        }
        XCTAssertEqual(r.histogram.reduce(0, +), 6 * size)
        XCTAssertEqual(r.viewMean.count, 6)
    }
}
