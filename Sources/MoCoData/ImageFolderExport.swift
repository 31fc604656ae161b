import Foundation
import MoCoTensor

/// Writes a dataset as an image folder (`moco export-folder`): `root/train/<class>/<index>.png`
/// and `root/val/<class>/<index>.png` (or `.jpg`), so that users can check the folder reader
/// against the built-in readers and tests have real files.
///
/// Class folders are named `<label>_<name>` with the label zero-padded, so that their sorted
/// order (the order `ImageFolderListing` and torchvision give labels in) is the label order and
/// the folder's labels equal the dataset's. File names are the image's index in its split,
/// zero-padded, so the folder's order within a class is the dataset's order. Grey datasets are
/// written as 8-bit grey PNG (colour type 0), colour ones as 8-bit RGB (colour type 2): read back
/// at the same size, PNG gives the same bytes; JPEG is lossy (`quality`).
public enum ImageFolderExport {
    public enum Format: Sendable, Equatable {
        case png
        case jpeg(quality: Int)
        var fileExtension: String { self == .png ? "png" : "jpg" }
    }

    /// Writes the first `limit` images (all when nil) of `train` and of `val`, each resized to
    /// `size` x `size` first when given (`ImageResize`; larger files for measuring the reader).
    /// -> images written.
    public static func write(train: Dataset, val: Dataset, classNames: [String], to root: String, format: Format,
                             limit: Int? = nil, size: Int? = nil, threads: Int) throws -> (train: Int, val: Int) {
        let fm = FileManager.default
        for split in ["train", "val"] where fm.fileExists(atPath: root + "/" + split) {
            throw DataError(.invalidArgument, path: root + "/" + split, "\(root)/\(split) already exists; export into a new folder")
        }
        let classes = max(train.numClasses, val.numClasses)
        guard classNames.count >= classes else {
            throw DataError(.invalidArgument, "\(classNames.count) class names for \(classes) classes")
        }
        let width = String(max(classes - 1, 0)).count
        let folders = (0..<classes).map { label -> String in
            let digits = String(label)
            let name = classNames[label].map { $0 == "/" || $0 == " " ? "_" : $0 }
            return String(repeating: "0", count: width - digits.count) + digits + "_" + String(name)
        }
        var written: [Int] = []
        for (split, ds) in [("train", train), ("val", val)] {
            let n = min(limit ?? ds.count, ds.count)
            for f in folders {
                let dir = root + "/" + split + "/" + f
                do { try fm.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                    throw DataError(.invalidArgument, path: dir, "cannot create \(dir): \(error.localizedDescription)")
                }
            }
            let digits = max(5, String(max(ds.count - 1, 0)).count)
            let side = size ?? ds.height
            try encodeAll(ds, count: n, size: size, threads: threads) { i in
                let index = String(i)
                let name = String(repeating: "0", count: digits - index.count) + index + "." + format.fileExtension
                return root + "/" + split + "/" + folders[Int(ds.labels[i])] + "/" + name
            } encode: { hwc in
                switch format {
                case .png:
                    return try ImageCodec.encodePNG(width: size == nil ? ds.width : side, height: side,
                                                    colorType: ds.channels == 1 ? .grey : .rgb, samples: hwc)
                case .jpeg(let q):
                    return try ImageCodec.encodeJPEG(width: size == nil ? ds.width : side, height: side, channels: ds.channels,
                                                     quality: q, pixels: hwc)
                }
            }
            written.append(n)
        }
        return (written[0], written[1])
    }

    /// Encodes and writes images 0..<count on `threads` workers; `encode` gets [h, w, C] bytes
    /// (size x size x C when `size` is given).
    static func encodeAll(_ ds: Dataset, count n: Int, size: Int?, threads: Int, path: (Int) -> String,
                          encode: ([UInt8]) throws -> [UInt8]) throws {
        let side = size ?? 0
        // Per worker: the image as [h, w, C], and (with `size`) its resized CHW and HWC forms.
        typealias Scratch = (hwc: [UInt8], chw: [UInt8], resized: [UInt8])
        let scratch = { () -> Scratch in
            ([UInt8](repeating: 0, count: ds.imageSize), [UInt8](repeating: 0, count: ds.channels * side * side),
             [UInt8](repeating: 0, count: ds.channels * side * side))
        }
        try forEachItem(n, threads: threads, state: scratch) { w, i in
            ds.pixels.withUnsafeBufferPointer { src in
                w.hwc.withUnsafeMutableBufferPointer { dst in
                    toHWC(src.baseAddress! + i * ds.imageSize, channels: ds.channels, plane: ds.height * ds.width, into: dst.baseAddress!)
                }
            }
            if size != nil {
                w.hwc.withUnsafeBufferPointer { src in
                    w.chw.withUnsafeMutableBufferPointer { dst in
                        ImageResize.resizeCentreCrop(src.baseAddress!, height: ds.height, width: ds.width, channels: ds.channels,
                                                     size: side, into: dst.baseAddress!)
                    }
                }
                w.chw.withUnsafeBufferPointer { src in
                    w.resized.withUnsafeMutableBufferPointer { dst in
                        toHWC(src.baseAddress!, channels: ds.channels, plane: side * side, into: dst.baseAddress!)
                    }
                }
            }
            let file = path(i)
            let bytes = try encode(size == nil ? w.hwc : w.resized)
            do { try Data(bytes).write(to: URL(fileURLWithPath: file)) } catch {
                throw DataError(.invalidArgument, path: file, "cannot write \(file): \(error.localizedDescription)")
            }
        }
    }

    /// src: [C, h, w] bytes -> dst: [h, w, C] bytes (plane = h * w).
    static func toHWC(_ src: UnsafePointer<UInt8>, channels C: Int, plane: Int, into dst: UnsafeMutablePointer<UInt8>) {
        for c in 0..<C {
            let s = src + c * plane
            for i in 0..<plane { dst[i * C + c] = s[i] }
        }
    }
}
