import XCTest
import MoCoData

final class ColorOpsTests: XCTestCase {
    func testBrightnessScalesAndClamps() {
        var v: [Float] = [0, 0.25, 0.5, 0.9]
        adjustBrightness(&v, count: 4, factor: 1.5)
        XCTAssertEqual(v, [0, 0.375, 0.75, 1])
    }

    func testContrastBlendsWithMeanOfGrayImage() {
        var v: [Float] = [0.2, 0.4, 0.6, 0.8]          // 1 channel, mean 0.5
        adjustContrast(&v, channels: 1, planeSize: 4, factor: 0.5)
        for (a, b) in zip(v, [0.35, 0.45, 0.55, 0.65] as [Float]) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        // 3 channels: one scalar, the mean luma, for every channel.
        var rgb: [Float] = [1, 0, 0, 0, 0, 0]         // r = [1, 0], g = [0, 0], b = [0, 0]
        adjustContrast(&rgb, channels: 3, planeSize: 2, factor: 0)
        let meanLuma: Float = 0.2989 / 2
        for x in rgb { XCTAssertEqual(x, meanLuma, accuracy: 1e-6) }
    }

    func testSaturationZeroIsGrayscaleAndOneChannelUntouched() {
        var rgb: [Float] = [0.9, 0.1, 0.3, 0.5, 0.2, 0.7]   // 2 pixels
        var g = rgb
        adjustSaturation(&rgb, channels: 3, planeSize: 2, factor: 0)
        grayscale(&g, channels: 3, planeSize: 2)
        for (a, b) in zip(rgb, g) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        XCTAssertEqual(g[0], 0.2989 * 0.9 + 0.587 * 0.3 + 0.114 * 0.2, accuracy: 1e-6)
        var one: [Float] = [0.3, 0.6]
        adjustSaturation(&one, channels: 1, planeSize: 2, factor: 0)
        adjustHue(&one, channels: 1, planeSize: 2, shift: 0.3)
        XCTAssertEqual(one, [0.3, 0.6])
    }

    func testHueRotatesPrimaries() {
        // Pixels: red, green, dark blue-ish grey; shift by 1/3 turn: red -> green -> blue.
        var img: [Float] = [1, 0, 0.2,  0, 1, 0.2,  0, 0, 0.6]
        adjustHue(&img, channels: 3, planeSize: 3, shift: 1.0 / 3.0)
        let expected: [Float] = [0, 0, 0.6,  1, 0, 0.2,  0, 1, 0.2]
        for (a, b) in zip(img, expected) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        // A zero shift is the identity (up to rounding) on a random colour image.
        var rnd: [Float] = (0..<30).map { Float(($0 * 37) % 101) / 100 }
        let before = rnd
        adjustHue(&rnd, channels: 3, planeSize: 10, shift: 0)
        for (a, b) in zip(rnd, before) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    func testGaussianKernelAndBlur() {
        let k = gaussianKernel1D(size: 5, sigma: 1)
        XCTAssertEqual(k.reduce(0, +), 1, accuracy: 1e-6)
        XCTAssertEqual(k[1] / k[2], exp(-0.5), accuracy: 1e-6)
        XCTAssertEqual(k[0], k[4])
        // Impulse in the middle of a 9x9 image -> the outer product of the kernel.
        var img = [Float](repeating: 0, count: 81)
        img[4 * 9 + 4] = 1
        var tmp = [Float](repeating: 0, count: 81)
        gaussianBlur(&img, tmp: &tmp, channels: 1, height: 9, width: 9, kernel: k, size: 5)
        for y in 0..<9 { for x in 0..<9 {
            let dy = y - 2, dx = x - 2
            let e: Float = (0..<5).contains(dy) && (0..<5).contains(dx) ? k[dy] * k[dx] : 0
            XCTAssertEqual(img[y * 9 + x], e, accuracy: 1e-7)
        } }
        // Reflect padding (mirror without repeating the edge): column -1 reads column 1, so an
        // impulse at (row 0, column 1) reaches (0, 0) through taps 1 and 3.
        var edge = [Float](repeating: 0, count: 81)
        edge[1] = 1
        gaussianBlur(&edge, tmp: &tmp, channels: 1, height: 9, width: 9, kernel: k, size: 5)
        XCTAssertEqual(edge[0], (k[1] + k[3]) * k[2], accuracy: 1e-7)
        XCTAssertEqual(edge[9], (k[1] + k[3]) * k[1], accuracy: 1e-7)
    }
}
