import XCTest
import MoCoData

/// PNG and JPEG through the CImageCodecs shim: every PNG colour type and bit depth converted to
/// 8-bit grey or RGB, JPEG grey and colour, and corrupt files named with the library's message.
/// The test images are written by the shim's own encoders (libpng, libjpeg).
final class ImageCodecTests: XCTestCase {
    /// Deterministic pseudo-random bytes.
    func bytes(_ n: Int, seed: UInt32 = 1) -> [UInt8] {
        var x = seed &* 2654435761 | 1
        return (0..<n).map { _ in x ^= x << 13; x ^= x >> 17; x ^= x << 5; return UInt8(truncatingIfNeeded: x >> 7) }
    }

    func testGreyAndRGBPNGOfOddSizeRoundTrip() throws {
        let (w, h) = (17, 41)
        let grey = bytes(w * h)
        var d = try ImageCodec.decode(try ImageCodec.encodePNG(width: w, height: h, colorType: .grey, samples: grey))
        XCTAssertEqual([d.width, d.height, d.channels], [17, 41, 1])
        XCTAssertEqual(d.pixels, grey)
        let rgb = bytes(w * h * 3, seed: 2)
        d = try ImageCodec.decode(try ImageCodec.encodePNG(width: w, height: h, colorType: .rgb, samples: rgb))
        XCTAssertEqual([d.width, d.height, d.channels], [17, 41, 3])
        XCTAssertEqual(d.pixels, rgb)
        // Adam7 interlacing is undone.
        d = try ImageCodec.decode(try ImageCodec.encodePNG(width: w, height: h, colorType: .rgb, interlaced: true, samples: rgb))
        XCTAssertEqual(d.pixels, rgb)
    }

    func testAlphaIsDroppedAndPaletteExpanded() throws {
        let (w, h) = (5, 3), n = w * h
        let ga = bytes(n * 2)
        var d = try ImageCodec.decode(try ImageCodec.encodePNG(width: w, height: h, colorType: .greyAlpha, samples: ga))
        XCTAssertEqual(d.channels, 1)
        XCTAssertEqual(d.pixels, stride(from: 0, to: 2 * n, by: 2).map { ga[$0] }, "grey kept as stored, alpha dropped")
        let rgba = bytes(n * 4, seed: 3)
        d = try ImageCodec.decode(try ImageCodec.encodePNG(width: w, height: h, colorType: .rgba, samples: rgba))
        XCTAssertEqual(d.channels, 3)
        XCTAssertEqual(d.pixels, (0..<n).flatMap { rgba[4 * $0 ..< 4 * $0 + 3] })
        // A 4-bit palette image: RGB of each index's entry.
        let palette = bytes(16 * 3, seed: 4)
        let indices = (0..<n).map { UInt8($0 % 16) }
        d = try ImageCodec.decode(try ImageCodec.encodePNG(width: w, height: h, colorType: .palette, bitDepth: 4,
                                                            samples: indices, palette: palette))
        XCTAssertEqual(d.channels, 3)
        XCTAssertEqual(d.pixels, indices.flatMap { palette[3 * Int($0) ..< 3 * Int($0) + 3] })
    }

    func testLowAndHighBitDepthsScaleTo8Bits() throws {
        let (w, h) = (7, 4), n = w * h
        // 1-bit grey: 0 and 1 become 0 and 255.
        let bits = (0..<n).map { UInt8($0 % 2) }
        var d = try ImageCodec.decode(try ImageCodec.encodePNG(width: w, height: h, colorType: .grey, bitDepth: 1, samples: bits))
        XCTAssertEqual(d.pixels, bits.map { $0 * 255 })
        // 16-bit grey and RGB: round(v * 255 / 65535).
        let wide: [UInt16] = (0..<n * 3).map { UInt16(truncatingIfNeeded: $0 &* 2411 &+ 128 * ($0 % 5)) } + []
        let expect = wide.map { UInt8((Double($0) * 255 / 65535).rounded()) }
        d = try ImageCodec.decode(try ImageCodec.encodePNG16(width: w, height: h, colorType: .rgb, samples: wide))
        XCTAssertEqual(d.channels, 3)
        XCTAssertEqual(d.pixels, expect)
        d = try ImageCodec.decode(try ImageCodec.encodePNG16(width: w, height: h, colorType: .grey, samples: Array(wide.prefix(n))))
        XCTAssertEqual(d.channels, 1)
        XCTAssertEqual(d.pixels, Array(expect.prefix(n)))
        XCTAssertEqual(try ImageCodec.decode(try ImageCodec.encodePNG16(width: 2, height: 1, colorType: .grey, samples: [65535, 32896])).pixels,
                       [255, 128])
    }

    func testJPEGGreyAndColour() throws {
        let (w, h) = (17, 41)
        // Smooth images: JPEG at quality 100 keeps them within a few levels.
        let grey = (0..<w * h).map { UInt8(($0 % w) * 9 + ($0 / w) * 2) }
        var d = try ImageCodec.decode(try ImageCodec.encodeJPEG(width: w, height: h, channels: 1, quality: 100, pixels: grey))
        XCTAssertEqual([d.width, d.height, d.channels], [17, 41, 1])
        XCTAssertLessThanOrEqual(zip(d.pixels, grey).map { abs(Int($0) - Int($1)) }.max()!, 3)
        let rgb = (0..<w * h).flatMap { i -> [UInt8] in [UInt8((i % w) * 12), UInt8((i / w) * 5), 90] }
        d = try ImageCodec.decode(try ImageCodec.encodeJPEG(width: w, height: h, channels: 3, quality: 100, pixels: rgb))
        XCTAssertEqual([d.width, d.height, d.channels], [17, 41, 3])
        let meanError = Double(zip(d.pixels, rgb).map { abs(Int($0) - Int($1)) }.reduce(0, +)) / Double(rgb.count)
        XCTAssertLessThan(meanError, 3, "colour JPEG (4:2:0) is close")
    }

    func testCorruptFilesFailWithTheLibrarysMessage() throws {
        let png = try ImageCodec.encodePNG(width: 17, height: 41, colorType: .grey, samples: bytes(17 * 41))
        assertDataError(.corrupt, contains: ["x.png", "libpng", "truncated"]) {
            _ = try ImageCodec.decode(Array(png.prefix(png.count / 2)), path: "x.png")
        }
        var flipped = png
        flipped[png.count / 2] ^= 0x5A   // inside IDAT's compressed stream
        assertDataError(.corrupt, contains: ["y.png", "libpng", "IDAT"]) { _ = try ImageCodec.decode(flipped, path: "y.png") }
        let jpeg = try ImageCodec.encodeJPEG(width: 17, height: 41, channels: 3, quality: 90, pixels: bytes(17 * 41 * 3))
        assertDataError(.corrupt, contains: ["z.jpg", "libjpeg", "Premature end of JPEG file"]) {
            _ = try ImageCodec.decode(Array(jpeg.prefix(jpeg.count * 2 / 3)), path: "z.jpg")
        }
        assertDataError(.corrupt, contains: ["w.jpg", "libjpeg"]) { _ = try ImageCodec.decode(Array(jpeg.prefix(40)), path: "w.jpg") }
        assertDataError(.corrupt, contains: ["t.png", "not a PNG or JPEG file", "68 65 6c 6c 6f"]) {
            _ = try ImageCodec.decode(Array("hello world".utf8), path: "t.png")
        }
        assertDataError(.corrupt, contains: ["e.png", "empty"]) { _ = try ImageCodec.decode([], path: "e.png") }
    }

    /// A header that states more than 2^26 pixels is refused before the decoder allocates its
    /// buffer (CImageCodecs.h; the fuzz limit is 512 MB for one allocation), for PNG and JPEG.
    func testHeadersStatingTooManyPixelsAreRefused() throws {
        func crc32(_ b: ArraySlice<UInt8>) -> UInt32 {
            var c: UInt32 = 0xFFFF_FFFF
            for x in b { c ^= UInt32(x); for _ in 0..<8 { c = c & 1 == 1 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 } }
            return ~c
        }
        func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 255), UInt8((v >> 8) & 255), UInt8(v & 255)] }
        var png = try ImageCodec.encodePNG(width: 3, height: 2, colorType: .grey, samples: bytes(6))
        // IHDR: length at 8, type at 12, width at 16, height at 20, CRC over type+data at 29.
        png.replaceSubrange(16..<24, with: be(9000) + be(9000))      // 81 M pixels > 2^26
        png.replaceSubrange(29..<33, with: be(crc32(png[12..<29])))
        assertDataError(.corrupt, contains: ["big.png", "libpng", "9000x9000", "67108864 in all"]) { _ = try ImageCodec.decode(png, path: "big.png") }
        var jpeg = try ImageCodec.encodeJPEG(width: 3, height: 2, channels: 1, quality: 90, pixels: bytes(6))
        // SOF0 (FF C0): length (2), precision (1), height (2), width (2).
        let sof = try XCTUnwrap((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        jpeg.replaceSubrange((sof + 5)..<(sof + 9), with: [0x23, 0x28, 0x23, 0x28])   // 9000 x 9000
        assertDataError(.corrupt, contains: ["big.jpg", "9000x9000", "67108864 in all"]) { _ = try ImageCodec.decode(jpeg, path: "big.jpg") }
    }

    /// A smaller limit (the fuzz target's) refuses a header past it and accepts one at it; a
    /// larger one is clamped to `ImageCodec.maxPixels`.
    func testACallersPixelLimitIsApplied() throws {
        let png = try ImageCodec.encodePNG(width: 4, height: 3, colorType: .grey, samples: bytes(12))
        let jpeg = try ImageCodec.encodeJPEG(width: 4, height: 3, channels: 1, quality: 90, pixels: bytes(12))
        for (file, name) in [(png, "a.png"), (jpeg, "a.jpg")] {
            XCTAssertEqual(try ImageCodec.decode(file, path: name, maxPixels: 12).width, 4)
            XCTAssertEqual(try ImageCodec.decode(file, path: name, maxPixels: Int.max).height, 3)
            assertDataError(.corrupt, contains: [name, "4x3", "11 in all"]) { _ = try ImageCodec.decode(file, path: name, maxPixels: 11) }
        }
    }
}
