import XCTest
@testable import MoCoData

/// `ImageResize`: torchvision's Resize(size) + CenterCrop(size) geometry and an antialiased
/// (triangle-filter) resampling.
final class ImageResizeTests: XCTestCase {
    /// src [h, w, c] -> [c, s, s].
    func resize(_ src: [UInt8], _ h: Int, _ w: Int, _ c: Int, to s: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: c * s * s)
        src.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { ImageResize.resizeCentreCrop(p.baseAddress!, height: h, width: w, channels: c, size: s, into: $0.baseAddress!) }
        }
        return out
    }

    func testGeometryIsTorchvisionsResizeThenCentreCrop() {
        // Shorter side to s, longer to int(s * long / short); crop offset round((long' - s) / 2), halves to even.
        XCTAssertTrue(ImageResize.geometry(height: 28, width: 40, size: 28) == (28, 40, 0, 6))
        XCTAssertTrue(ImageResize.geometry(height: 41, width: 17, size: 8) == (19, 8, 6, 0))   // 8*41/17 = 19.3; (19-8)/2 = 5.5 -> 6
        XCTAssertTrue(ImageResize.geometry(height: 28, width: 41, size: 28) == (28, 41, 0, 6)) // 6.5 -> 6
        XCTAssertTrue(ImageResize.geometry(height: 28, width: 43, size: 28) == (28, 43, 0, 8)) // 7.5 -> 8
        XCTAssertTrue(ImageResize.geometry(height: 10, width: 10, size: 32) == (32, 32, 0, 0))
    }

    func testSameSizeTransposesAndUnitScaleCrops() {
        let (h, w) = (28, 40)
        let src = (0..<h * w * 3).map { UInt8(truncatingIfNeeded: $0 * 7) }
        // 28 x 40 to 28: no scaling, columns 6..<34 of each channel.
        let out = resize(src, h, w, 3, to: 28)
        for c in 0..<3 { for y in 0..<28 { for x in 0..<28 {
            XCTAssertEqual(out[c * 784 + y * 28 + x], src[(y * w + x + 6) * 3 + c])
        } } }
        let square = Array(src.prefix(28 * 28 * 3))
        let same = resize(square, 28, 28, 3, to: 28)
        XCTAssertEqual(same[784 + 5], square[5 * 3 + 1])
    }

    func testDownscalingAveragesInsteadOfAliasing() {
        // A one-pixel checkerboard has no content below its Nyquist limit: point sampling would
        // give 0s or 255s, an antialiased filter the mean.
        let n = 64
        let board = (0..<n * n).map { UInt8(($0 % n + $0 / n) % 2 * 255) }
        let out = resize(board, n, n, 1, to: 8)
        for v in out { XCTAssertEqual(Double(v), 127.5, accuracy: 2, "aliasing") }
        // A constant stays constant at any scale and aspect.
        XCTAssertEqual(Set(resize([UInt8](repeating: 77, count: 17 * 41 * 3), 17, 41, 3, to: 8)), [77])
        XCTAssertEqual(Set(resize([UInt8](repeating: 200, count: 5 * 3), 5, 3, 1, to: 32)), [200])
    }

    func testLinearRampIsKeptAwayFromTheBorders() {
        // Triangle weights symmetric about each output centre reproduce a linear function:
        // 64 -> 32 maps source value 3x to 3 * (2o + 0.5) at output column o.
        let n = 64
        let ramp = (0..<n * n).map { UInt8(3 * ($0 % n)) }
        let out = resize(ramp, n, n, 1, to: 32)
        for y in 0..<32 { for o in 1..<31 {
            XCTAssertEqual(Double(out[y * 32 + o]), 3 * (2 * Double(o) + 0.5), accuracy: 0.51)
        } }
    }

    func testTopBottomSymmetryIsKeptForAnOddSize() {
        // 17 x 41 to 8: the 17 rows (the shorter side) scale to 8 with no crop, so a top-bottom
        // symmetric image stays symmetric (the columns are scaled to 19 and cropped).
        let (h, w) = (17, 41)
        var src = [UInt8](repeating: 0, count: h * w)
        for y in 0..<h { for x in 0..<w { src[y * w + x] = UInt8((min(y, h - 1 - y) * 29 + x * 3) % 256) } }
        let out = resize(src, h, w, 1, to: 8)
        for y in 0..<4 { for x in 0..<8 {
            XCTAssertEqual(Int(out[y * 8 + x]), Int(out[(7 - y) * 8 + x]), accuracy: 1)
        } }
    }

    func testLumaIsBT601() {
        let rgb: [UInt8] = [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 10, 20, 30]
        var grey = [UInt8](repeating: 0, count: 5)
        rgb.withUnsafeBufferPointer { s in grey.withUnsafeMutableBufferPointer { Luma.fromRGB(s.baseAddress!, count: 5, into: $0.baseAddress!) } }
        XCTAssertEqual(grey, [76, 150, 29, 255, 18])   // 0.299*255, 0.587*255, 0.114*255; 2.99+11.74+3.42
    }
}
