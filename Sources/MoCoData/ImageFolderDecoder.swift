import Foundation
import MoCoTensor

/// Decodes a run of an image folder's files into square images on several threads.
///
/// Each file is read, decoded (`ImageCodec`: PNG or JPEG by its first bytes), made grey by
/// BT.601 luma first if `forceGrey` and it is colour, then resized and centre-cropped to
/// `imageSize` (`ImageResize`). The result of a file depends on that file alone, so any split of
/// the work (threads, ranks) gives the same bytes.
public enum ImageFolderDecoder {
    /// Packed records, one per file in order: a channel byte c (1 or 3), then c x imageSize x
    /// imageSize bytes (CHW). Workers take files one at a time from a shared counter (decode
    /// times differ by orders of magnitude between a thumbnail and a photo). The first failing
    /// file (in order, among those tried) is the error, naming the file.
    public static func decode(_ files: ArraySlice<ImageFolderFile>, root: String, imageSize: Int, forceGrey: Bool,
                              threads: Int) throws -> [UInt8] {
        let n = files.count, s = imageSize, slot = 1 + 3 * s * s
        guard n > 0 else { return [] }
        let slots = UnsafeMutablePointer<UInt8>.allocate(capacity: n * slot)
        defer { slots.deallocate() }
        let first = files.startIndex
        try forEachItem(n, threads: threads, state: { () }) { _, i in
            try decodeFile(root + "/" + files[first + i].path, imageSize: s, forceGrey: forceGrey, into: slots + i * slot)
        }
        var total = 0
        for i in 0..<n { total += 1 + Int(slots[i * slot]) * s * s }
        var packed = [UInt8](repeating: 0, count: total)
        packed.withUnsafeMutableBufferPointer { out in
            var at = 0
            for i in 0..<n {
                let bytes = 1 + Int(slots[i * slot]) * s * s
                (out.baseAddress! + at).update(from: slots + i * slot, count: bytes)
                at += bytes
            }
        }
        return packed
    }

    /// One file -> slot: [1 channel byte][c, s, s] bytes.
    static func decodeFile(_ path: String, imageSize s: Int, forceGrey: Bool, into slot: UnsafeMutablePointer<UInt8>) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            let why = FileManager.default.fileExists(atPath: path) ? "permission denied or not readable" : "no such file"
            throw DataError(.missingFile, path: path, "cannot read image \(path) (\(why))")
        }
        try data.withUnsafeBytes { raw in
            try ImageCodec.withDecoded(raw, path: path) { pixels, h, w, c in
                if forceGrey && c == 3 {
                    let grey = UnsafeMutablePointer<UInt8>.allocate(capacity: h * w)
                    defer { grey.deallocate() }
                    Luma.fromRGB(pixels, count: h * w, into: grey)
                    slot[0] = 1
                    ImageResize.resizeCentreCrop(grey, height: h, width: w, channels: 1, size: s, into: slot + 1)
                } else {
                    slot[0] = UInt8(c)
                    ImageResize.resizeCentreCrop(pixels, height: h, width: w, channels: c, size: s, into: slot + 1)
                }
            }
        }
    }
}
