import MoCoTensor
import XCTest
import MoCoData

final class AugmentTests: XCTestCase {
    let gray = Dataset.synthetic(split: .train, count: 40, channels: 1, height: 28, width: 28)
    let color = Dataset.synthetic(split: .train, count: 20, channels: 3, height: 32, width: 32)

    func view(_ ds: Dataset, _ index: Int, _ config: AugmentConfig, seed: UInt64 = 7, epoch: UInt64 = 0,
              view: UInt64 = 0) -> [Float] {
        var rng = Xoshiro(seed: seed, stream: [0x4155, epoch, UInt64(index), view])
        let out = FloatBuffer(count: ds.imageSize)
        augment(ds, index: index, config: config, rng: &rng, out: out.ptr)
        return out.array
    }

    func normalized(_ ds: Dataset, _ index: Int) -> [Float] {
        let out = FloatBuffer(count: ds.imageSize)
        normalizedImage(ds, index: index, out: out.ptr)
        return out.array
    }

    func testDeterministicPerView() {
        for ds in [gray, color] {
            for i in [0, 5, 13] {
                let a = view(ds, i, .mocoV2), b = view(ds, i, .mocoV2)
                XCTAssertEqual(a, b)
                XCTAssertNotEqual(a, view(ds, i, .mocoV2, view: 1))
                XCTAssertNotEqual(a, view(ds, i, .mocoV2, epoch: 1))
                XCTAssertNotEqual(a, view(ds, i, .mocoV2, seed: 8))
            }
        }
    }

    func testIdentityConfigIsExactlyTheNormalizedImage() {
        for ds in [gray, color] {
            for i in 0..<ds.count {
                XCTAssertEqual(view(ds, i, .identity), normalized(ds, i))
            }
        }
    }

    func testNormalizedImageFormula() {
        let out = normalized(color, 3)
        let k = 2 * 1024 + 100
        let expected = (Float(color.pixels[3 * 3072 + k]) / 255 - color.mean[2]) / color.std[2]
        XCTAssertEqual(out[k], expected, accuracy: 1e-5)
    }

    func testOutputStatisticsAreSane() {
        var sum: Double = 0, sq: Double = 0, n = 0
        var differs = 0
        for ds in [gray, color] {
            for i in 0..<ds.count {
                let v = view(ds, i, .mocoV2)
                XCTAssertTrue(v.allSatisfy { $0.isFinite })
                // Every value is a normalised 0...1 intensity.
                let lo = (0 - ds.mean.max()!) / ds.std.min()! - 1e-3, hi = (1 - ds.mean.min()!) / ds.std.min()! + 1e-3
                XCTAssertTrue(v.allSatisfy { $0 >= lo && $0 <= hi })
                if v != normalized(ds, i) { differs += 1 }
                for x in v { sum += Double(x); sq += Double(x * x); n += 1 }
            }
        }
        XCTAssertEqual(differs, gray.count + color.count)
        let mean = sum / Double(n), std = (sq / Double(n) - mean * mean).squareRoot()
        XCTAssertEqual(mean, 0, accuracy: 0.4)
        XCTAssertGreaterThan(std, 0.5)
        XCTAssertLessThan(std, 1.5)
    }

    /// An 8x8 ramp v = 10 y + x, cropped 4x4 and upsampled 2x: bilinear reproduces the ramp
    /// at the sampled source coordinates (x + 0.5) / 2 - 0.5 clamped into the crop.
    func testCropGeometryOnRamp() {
        let ramp: [UInt8] = (0..<64).map { (i: Int) -> UInt8 in UInt8(10 * (i / 8) + i % 8) }
        let ds = byteDataset(channels: 1, height: 8, width: 8, images: [ramp])
        var config = AugmentConfig.identity
        config.cropScaleMin = 0.25; config.cropScaleMax = 0.25
        var tops = Set<Int>(), lefts = Set<Int>()
        for flip in [false, true] {
            config.flipProb = flip ? 1 : 0
            for s in 0..<40 {
                var rng = Xoshiro(seed: UInt64(s))
                var probe = rng
                let p = AugmentParams(height: 8, width: 8, config: config, rng: &probe)
                XCTAssertEqual([p.box.height, p.box.width], [4, 4])
                XCTAssertEqual(p.flip, flip)
                tops.insert(p.box.top); lefts.insert(p.box.left)
                let out = FloatBuffer(count: 64)
                augment(ds, index: 0, config: config, rng: &rng, out: out.ptr)
                for y in 0..<8 {
                    for x in 0..<8 {
                        let sy = min(3, max(0, (Float(y) + 0.5) / 2 - 0.5))
                        let srcX = flip ? 7 - x : x
                        let sx = min(3, max(0, (Float(srcX) + 0.5) / 2 - 0.5))
                        let expected = 10 * (Float(p.box.top) + sy) + Float(p.box.left) + sx
                        XCTAssertEqual(out.ptr[y * 8 + x], expected, accuracy: 1e-3, "s \(s) at (\(x), \(y))")
                    }
                }
            }
        }
        XCTAssertEqual(tops, Set(0...4))
        XCTAssertEqual(lefts, Set(0...4))
    }

    func testFlipOnlyMirrorsRows() {
        var config = AugmentConfig.identity
        config.flipProb = 1
        let ds = color
        let plain = normalized(ds, 2)
        var rng = Xoshiro(seed: 1)
        let out = FloatBuffer(count: ds.imageSize)
        augment(ds, index: 2, config: config, rng: &rng, out: out.ptr)
        for c in 0..<3 { for y in 0..<32 { for x in 0..<32 {
            XCTAssertEqual(out.ptr[c * 1024 + y * 32 + x], plain[c * 1024 + y * 32 + 31 - x])
        } } }
    }

    func testCropBoxSampling() {
        var rng = Xoshiro(seed: 3)
        var minScale: Float = 1, maxScale: Float = 0
        for _ in 0..<2000 {
            let b = sampleCropBox(height: 28, width: 28, config: .mocoV2, rng: &rng)
            XCTAssertTrue(b.top >= 0 && b.left >= 0 && b.top + b.height <= 28 && b.left + b.width <= 28)
            let s = Float(b.height * b.width) / 784
            minScale = min(minScale, s); maxScale = max(maxScale, s)
            let r = Float(b.width) / Float(b.height)
            XCTAssertTrue(r > 0.5 && r < 2, "ratio \(r)")
        }
        XCTAssertLessThan(minScale, 0.25)
        XCTAssertGreaterThan(maxScale, 0.9)
        // Impossible ratio range: the fallback centre crop with the ratio clamped to 2.
        let wide = AugmentConfig(cropScaleMin: 1, cropScaleMax: 1, ratioMin: 2, ratioMax: 3)
        XCTAssertEqual(sampleCropBox(height: 28, width: 28, config: wide, rng: &rng),
                       CropBox(top: 7, left: 0, height: 14, width: 28))
    }

    func testBlurKernelSizes() {
        XCTAssertEqual(AugmentConfig.blurKernelSize(forImageSide: 224), 23)
        XCTAssertEqual(AugmentConfig.blurKernelSize(forImageSide: 28), 3)
        XCTAssertEqual(AugmentConfig.blurKernelSize(forImageSide: 32), 3)
        XCTAssertEqual(AugmentConfig.blurKernelSize(forImageSide: 96), 9)
        XCTAssertEqual(AugmentConfig.mocoV1.blurProb, 0)
        XCTAssertEqual(AugmentConfig.mocoV2.blurProb, 0.5)
    }

    /// `--crop-ratio-min/max`: with the range (1, 1) every crop is square (up to the rounding of
    /// its sides); with (0.5, 2) they spread to both ends.
    func testCropRatioRange() {
        var rng = Xoshiro(seed: 4)
        let square = AugmentConfig(ratioMin: 1, ratioMax: 1)
        var wide = AugmentConfig.mocoV2
        wide.ratioMin = 0.5; wide.ratioMax = 2
        var lo: Float = 10, hi: Float = 0
        for _ in 0..<2000 {
            let b = sampleCropBox(height: 28, width: 28, config: square, rng: &rng)
            XCTAssertLessThanOrEqual(abs(b.width - b.height), 1, "\(b)")
            let w = sampleCropBox(height: 28, width: 28, config: wide, rng: &rng)
            let r = Float(w.width) / Float(w.height)
            lo = min(lo, r); hi = max(hi, r)
        }
        XCTAssertLessThan(lo, 0.6)
        XCTAssertGreaterThan(hi, 1.7)
    }

    /// `--jitter-strength s` is SimCLR's colour strength: (0.8 s, 0.8 s, 0.8 s, 0.2 s); s = 0.5 is
    /// MoCo v2's jitter.
    func testJitterStrength() {
        var c = AugmentConfig.mocoV2
        c.setJitterStrength(0.5)
        XCTAssertEqual(c, .mocoV2)
        c.setJitterStrength(1)
        XCTAssertEqual([c.brightness, c.contrast, c.saturation, c.hue], [0.8, 0.8, 0.8, 0.2])
    }

    /// Every out-of-range value is named (the flag where there is one); the presets pass.
    func testProblemsAreNamed() {
        for preset in [AugmentConfig.mocoV2, .mocoV1, .identity] { XCTAssertNil(preset.problem()) }
        func problem(_ edit: (inout AugmentConfig) -> Void) -> String {
            var c = AugmentConfig.mocoV2
            edit(&c)
            return c.problem() ?? "no problem"
        }
        XCTAssertTrue(problem { $0.cropScaleMax = 0.1 }.contains("--crop-max-scale"))
        XCTAssertTrue(problem { $0.cropScaleMin = 0 }.contains("--crop-min-scale"))
        XCTAssertTrue(problem { $0.cropScaleMax = .nan }.contains("crop scale"))
        XCTAssertTrue(problem { $0.ratioMin = 2; $0.ratioMax = 1 }.contains("--crop-ratio-min"))
        XCTAssertTrue(problem { $0.ratioMin = 0 }.contains("aspect ratio"))
        XCTAssertTrue(problem { $0.flipProb = 1.5 }.contains("--flip-prob must be in [0, 1] (got 1.5)"))
        XCTAssertTrue(problem { $0.jitterProb = -0.1 }.contains("--jitter-prob"))
        XCTAssertTrue(problem { $0.blurProb = .nan }.contains("--blur-prob"))
        XCTAssertTrue(problem { $0.setJitterStrength(-1) }.contains("brightness must be >= 0"))
        XCTAssertTrue(problem { $0.setJitterStrength(3) }.contains("hue must be in [0, 0.5]"))
        XCTAssertTrue(problem { $0.blurSigmaMax = 0.05 }.contains("--blur-sigma-max"))
    }

    func testConfigCodableRoundTrip() throws {
        let data = try JSONEncoder().encode(AugmentConfig.mocoV2)
        XCTAssertEqual(try JSONDecoder().decode(AugmentConfig.self, from: data), .mocoV2)
    }
}
