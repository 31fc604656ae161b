import CImageCodecs
import Foundation

/// An image as decoded: row-major [height, width, channels] bytes, channels 1 (grey) or 3 (RGB).
public struct DecodedImage: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [UInt8]
}

/// PNG and JPEG decoding and encoding through the C shim `CImageCodecs` (libpng 1.6,
/// libjpeg-turbo). The format is taken from the first bytes, not from the file name: PNG's
/// signature 89 50 4E 47 0D 0A 1A 0A (PNG spec 5.2), JPEG's SOI marker FF D8 (ITU T.81 B.1.1.2).
public enum ImageCodec {
    public enum Format: String, Sendable, CaseIterable {
        case png, jpeg
    }

    /// The format of a file starting with `bytes`, or nil.
    public static func format(of bytes: UnsafeRawBufferPointer) -> Format? {
        if bytes.count >= 8, bytes[0] == 0x89, bytes[1] == 0x50, bytes[2] == 0x4E, bytes[3] == 0x47,
           bytes[4] == 0x0D, bytes[5] == 0x0A, bytes[6] == 0x1A, bytes[7] == 0x0A { return .png }
        if bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF { return .jpeg }
        return nil
    }

    /// Decodes `bytes` and hands the library's pixel buffer ([height, width, channels]) to `body`
    /// without copying it. Errors name `path` and carry the library's message.
    static func withDecoded<R>(_ bytes: UnsafeRawBufferPointer, path: String, maxPixels: Int = ImageCodec.maxPixels,
                               _ body: (UnsafePointer<UInt8>, _ height: Int, _ width: Int, _ channels: Int) throws -> R) throws -> R {
        guard let format = format(of: bytes), let base = bytes.baseAddress else {
            let head = bytes.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
            throw DataError.corrupt(path, "not a PNG or JPEG file (first bytes: \(head.isEmpty ? "none, the file is empty" : head))")
        }
        precondition(maxPixels > 0, "maxPixels must be positive")
        let limit = size_t(maxPixels)   // clamped to MOCO_IMAGE_MAX_PIXELS by the shim
        var image = moco_image()
        var message = [CChar](repeating: 0, count: 512)
        let p = base.assumingMemoryBound(to: UInt8.self)
        let rc = format == .png ? moco_png_decode(p, bytes.count, limit, &image, &message, message.count)
                                : moco_jpeg_decode(p, bytes.count, limit, &image, &message, message.count)
        guard rc == 0, let pixels = image.pixels else {
            let library = format == .png ? "libpng" : "libjpeg"
            throw DataError.corrupt(path, "cannot decode the \(format == .png ? "PNG" : "JPEG") image: \(library): \(String(cString: message))")
        }
        defer { moco_image_free(&image) }
        return try body(UnsafePointer(pixels), Int(image.height), Int(image.width), Int(image.channels))
    }

    /// The most pixels (width x height) a decoded image may have, 2^26 (MOCO_IMAGE_MAX_PIXELS):
    /// a header stating more is refused before anything is allocated.
    public static let maxPixels = Int(MOCO_IMAGE_MAX_PIXELS)

    /// Decodes a PNG or JPEG file's bytes; a header stating more than `maxPixels` pixels (at most
    /// `ImageCodec.maxPixels`) is refused.
    public static func decode(_ bytes: [UInt8], path: String = "<memory>", maxPixels: Int = ImageCodec.maxPixels) throws -> DecodedImage {
        try bytes.withUnsafeBytes { raw in
            try withDecoded(raw, path: path, maxPixels: maxPixels) { p, h, w, c in
                DecodedImage(width: w, height: h, channels: c, pixels: Array(UnsafeBufferPointer(start: p, count: h * w * c)))
            }
        }
    }

    /// PNG colour types (PNG spec, table 11.1).
    public enum PNGColorType: Int32, Sendable {
        case grey = 0, rgb = 2, palette = 3, greyAlpha = 4, rgba = 6

        public var samplesPerPixel: Int {
            switch self {
            case .grey, .palette: return 1
            case .greyAlpha: return 2
            case .rgb: return 3
            case .rgba: return 4
            }
        }
    }

    /// Encodes row-major samples as a PNG: one byte per sample for bit depths up to 8 (values
    /// below 2^depth, palette indices for `.palette` with `palette` as RGB triples).
    public static func encodePNG(width: Int, height: Int, colorType: PNGColorType, bitDepth: Int = 8, interlaced: Bool = false,
                                 samples: [UInt8], palette: [UInt8] = []) throws -> [UInt8] {
        precondition(bitDepth <= 8 && samples.count == width * height * colorType.samplesPerPixel, "encodePNG: sample count")
        return try samples.withUnsafeBytes { try encodePNG(width, height, colorType, bitDepth, interlaced, $0.baseAddress!, palette) }
    }

    /// Encodes 16-bit samples as a PNG (bit depth 16).
    public static func encodePNG16(width: Int, height: Int, colorType: PNGColorType, interlaced: Bool = false,
                                   samples: [UInt16]) throws -> [UInt8] {
        precondition(samples.count == width * height * colorType.samplesPerPixel, "encodePNG16: sample count")
        return try samples.withUnsafeBytes { try encodePNG(width, height, colorType, 16, interlaced, $0.baseAddress!, []) }
    }

    private static func encodePNG(_ width: Int, _ height: Int, _ colorType: PNGColorType, _ depth: Int, _ interlaced: Bool,
                                  _ samples: UnsafeRawPointer, _ palette: [UInt8]) throws -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: 512)
        let rc = palette.withUnsafeBufferPointer { pal -> Int32 in
            var spec = moco_png_spec(width: Int32(width), height: Int32(height), color_type: colorType.rawValue,
                                     bit_depth: Int32(depth), interlace: interlaced ? 1 : 0, palette: pal.baseAddress,
                                     palette_entries: Int32(palette.count / 3))
            return moco_png_encode(&spec, samples, &out, &size, &message, message.count)
        }
        guard rc == 0, let out else { throw DataError(.invalidArgument, "PNG encoding failed: libpng: \(String(cString: message))") }
        defer { moco_buffer_free(out) }
        return Array(UnsafeBufferPointer(start: out, count: size))
    }

    /// Encodes [height, width, channels] bytes (1 or 3 channels) as a baseline JPEG.
    public static func encodeJPEG(width: Int, height: Int, channels: Int, quality: Int, pixels: [UInt8]) throws -> [UInt8] {
        precondition(pixels.count == width * height * channels, "encodeJPEG: sample count")
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: 512)
        let rc = moco_jpeg_encode(pixels, Int32(width), Int32(height), Int32(channels), Int32(quality), &out, &size,
                                  &message, message.count)
        guard rc == 0, let out else { throw DataError(.invalidArgument, "JPEG encoding failed: libjpeg: \(String(cString: message))") }
        defer { moco_buffer_free(out) }
        return Array(UnsafeBufferPointer(start: out, count: size))
    }
}
