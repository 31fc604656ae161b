import XCTest
import Foundation
@testable import MoCoData

/// `--data folder`: torchvision's ImageFolder layout, mixed PNG/JPEG grey/colour images of odd
/// sizes, the errors a broken folder gives, the decoded cache, and the exporter read back.
final class ImageFolderTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws { root = try makeTempDir(self) }

    func png(_ path: String, width: Int, height: Int, colour: Bool = false, value: (Int, Int, Int) -> UInt8) throws {
        let c = colour ? 3 : 1
        var s = [UInt8](repeating: 0, count: width * height * c)
        for y in 0..<height { for x in 0..<width { for k in 0..<c { s[(y * width + x) * c + k] = value(y, x, k) } } }
        try put(path, try ImageCodec.encodePNG(width: width, height: height, colorType: colour ? .rgb : .grey, samples: s))
    }

    func put(_ path: String, _ bytes: [UInt8]) throws {
        let full = root + "/" + path
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try writeFile(full, bytes)
    }

    func flat(_ v: UInt8) -> (Int, Int, Int) -> UInt8 { { _, _, _ in v } }

    func load(_ options: ImageFolderOptions = ImageFolderOptions(imageSize: 8)) throws -> ImageFolderLoad {
        try ImageFolder.load(root: root, options: options, threads: 2)
    }

    // MARK: - Layout

    func testClassesAndFilesInTorchvisionsOrderWithValLabelsFromTrain() throws {
        try png("train/b/2.png", width: 9, height: 9, value: flat(1))
        try png("train/b/10.png", width: 9, height: 9, value: flat(2))
        try png("train/a/x.PNG", width: 9, height: 9, value: flat(3))
        try png("train/a/sub/y.png", width: 9, height: 9, value: flat(4))
        try png("train/a/sub-2/z.png", width: 9, height: 9, value: flat(5))
        try png("train/a/sub/deep/d.png", width: 9, height: 9, value: flat(5))
        try png("train/c/q.png", width: 9, height: 9, value: flat(6))
        try put("train/c/notes.txt", Array("not an image".utf8))
        try put("train/c/.DS_Store", [0, 1, 2])
        try png("train/.ipynb_checkpoints/h.png", width: 9, height: 9, value: flat(7))
        try png("val/c/v.png", width: 9, height: 9, value: flat(8))
        try png("val/a/w.png", width: 9, height: 9, value: flat(9))
        let l = try ImageFolderListing.scan(root + "/")
        XCTAssertEqual(l.classes, ["a", "b", "c"], "sorted, hidden folders ignored")
        // Directories by their path as Python sorts os.walk's roots ("a" < "a/sub" < "a/sub-2" <
        // "a/sub/deep": a prefix first, '-' before '/'), each one's files by name.
        XCTAssertEqual(l.train.map(\.path), ["train/a/x.PNG", "train/a/sub/y.png", "train/a/sub-2/z.png", "train/a/sub/deep/d.png",
                                             "train/b/10.png", "train/b/2.png", "train/c/q.png"])
        XCTAssertEqual(l.train.map(\.label), [0, 0, 0, 0, 1, 1, 2])
        XCTAssertEqual(l.val.map(\.path), ["val/a/w.png", "val/c/v.png"])
        XCTAssertEqual(l.val.map(\.label), [0, 2], "val's labels index train's classes, though val has no 'b'")
        XCTAssertEqual(l.skipped, ["train/c/notes.txt"])
        let d = try load().images.datasets()
        XCTAssertEqual(d.train.count, 7)
        XCTAssertEqual(d.train.numClasses, 3)
        XCTAssertEqual(d.val.labels, [0, 2])
        XCTAssertEqual(Array(d.train.pixels.prefix(64)), [UInt8](repeating: 3, count: 64))
    }

    func testMixedFormatsAndSizesGiveChannelsFromTheData() throws {
        try png("train/cat/rgb.png", width: 17, height: 41, colour: true) { _, _, k in UInt8(50 + 50 * k) }
        try png("train/cat/grey.png", width: 41, height: 17) { _, _, _ in 90 }
        let jpeg = try ImageCodec.encodeJPEG(width: 13, height: 7, channels: 1, quality: 100, pixels: [UInt8](repeating: 160, count: 91))
        try put("train/dog/grey.jpg", jpeg)
        try png("val/dog/v.png", width: 8, height: 8) { _, _, _ in 30 }
        // Any colour image: 3 channels; grey images repeated into all three.
        var d = try load().images.datasets()
        XCTAssertEqual(d.train.channels, 3)
        XCTAssertEqual(d.val.channels, 3)
        let p = d.train.pixels, plane = 64
        // cat/grey.png sorts before cat/rgb.png.
        XCTAssertEqual(Set(p[0..<3 * plane]), [90])
        XCTAssertEqual(Set(p[3 * plane..<4 * plane]), [50]); XCTAssertEqual(Set(p[4 * plane..<5 * plane]), [100])
        XCTAssertEqual(Set(p[5 * plane..<6 * plane]), [150])
        XCTAssertEqual(Set(p[6 * plane..<9 * plane]).count, 1)
        XCTAssertEqual(Int(p[6 * plane]), 160, accuracy: 2)
        // Mean and std are the training images' (per channel).
        let jpegValue = Int(p[6 * plane])
        let meanRed = Float(50 + 90 + jpegValue) / 3 / 255
        XCTAssertEqual(d.train.mean[0], meanRed, accuracy: 1e-5)
        XCTAssertEqual(d.val.mean, d.train.mean)
        // --channels 1: colour becomes BT.601 luma at full size, before the resize.
        d = try load(ImageFolderOptions(imageSize: 8, channels: 1)).images.datasets()
        XCTAssertEqual(d.train.channels, 1)
        let luma: Int = (299 * 50 + 587 * 100 + 114 * 150 + 500) / 1000
        XCTAssertEqual(Set(d.train.pixels[plane..<2 * plane]), [UInt8(luma)])
        // Only grey images: 1 channel from the data; --channels 3 repeats them.
        try FileManager.default.removeItem(atPath: root + "/train/cat/rgb.png")
        XCTAssertEqual(try load().images.channels, 1)
        XCTAssertEqual(try load(ImageFolderOptions(imageSize: 8, channels: 3)).images.channels, 3)
    }

    // MARK: - Errors

    func testBrokenFoldersSayWhatIsWrong() throws {
        assertDataError(.missingFile, contains: [root + "/nothing", "not found"]) { _ = try ImageFolderListing.scan(root + "/nothing") }
        assertDataError(.missingFile, contains: [root + "/train", "not found", "train/<class>"]) { _ = try ImageFolderListing.scan(root) }
        try FileManager.default.createDirectory(atPath: root + "/train", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/val", withIntermediateDirectories: true)
        assertDataError(.badLayout, contains: [root + "/train", "no class folders"]) { _ = try ImageFolderListing.scan(root) }
        try put("train/cat/readme.txt", [1])
        assertDataError(.badLayout, contains: [root + "/train/cat", "holds no PNG or JPEG images"]) { _ = try ImageFolderListing.scan(root) }
        try png("train/cat/a.png", width: 4, height: 4, value: flat(1))
        assertDataError(.badLayout, contains: [root + "/val", "no class folders"]) { _ = try ImageFolderListing.scan(root) }
        try png("val/dog/b.png", width: 4, height: 4, value: flat(1))
        assertDataError(.badLayout, contains: ["class 'dog'", "in \(root)/val but not in \(root)/train"]) { _ = try ImageFolderListing.scan(root) }
        try FileManager.default.moveItem(atPath: root + "/val/dog", toPath: root + "/val/cat")
        try put("train/cat/c.webp", [1, 2, 3])
        assertDataError(.badLayout, contains: ["c.webp", ".webp images are not supported"]) { _ = try ImageFolderListing.scan(root) }
        try FileManager.default.removeItem(atPath: root + "/train/cat/c.webp")
        XCTAssertNoThrow(try load())
        // A corrupt image names the file and the library's message.
        let good = try ImageCodec.encodePNG(width: 17, height: 41, colorType: .grey, samples: [UInt8](repeating: 9, count: 17 * 41))
        try put("train/cat/broken.png", Array(good.prefix(good.count - 20)))
        assertDataError(.corrupt, contains: [root + "/train/cat/broken.png", "libpng"]) { _ = try load() }
        try put("train/cat/broken.png", Array("GIF89a".utf8))
        assertDataError(.corrupt, contains: [root + "/train/cat/broken.png", "not a PNG or JPEG file"]) { _ = try load() }
    }

    // MARK: - Cache

    func testDecodedCacheIsUsedUntilAFileChanges() throws {
        for i in 0..<6 { try png("train/c\(i % 2)/\(i).png", width: 20 + i, height: 13, colour: i == 3) { y, x, k in UInt8((y * 7 + x * 3 + k + i) % 256) } }
        try png("val/c1/v.png", width: 9, height: 30) { y, _, _ in UInt8(y * 8) }
        let options = ImageFolderOptions(imageSize: 12)
        let first = try load(options)
        XCTAssertFalse(first.fromCache)
        XCTAssertTrue(first.notes.contains { $0.contains("no decoded cache") }, "\(first.notes)")
        XCTAssertEqual(first.cachePath, root + "/.moco-cache-12px-auto.bin")
        XCTAssertTrue(FileManager.default.fileExists(atPath: first.cachePath))
        let second = try load(options)
        XCTAssertTrue(second.fromCache, "\(second.notes)")
        XCTAssertEqual(second.images, first.images)
        // Another size or channel request is another cache.
        XCTAssertFalse(try load(ImageFolderOptions(imageSize: 12, channels: 1)).fromCache)
        XCTAssertTrue(try load(ImageFolderOptions(imageSize: 12, channels: 1)).fromCache)

        // A changed file invalidates it (new size or modification time), and the new pixels are read.
        try png("train/c0/2.png", width: 22, height: 13) { _, _, _ in 201 }
        let third = try load(options)
        XCTAssertFalse(third.fromCache)
        XCTAssertTrue(third.notes.contains { $0.contains("out of date: 1 file(s) changed, 0 added, 0 removed") }, "\(third.notes)")
        let index = third.images.listing.train.firstIndex { $0.path == "train/c0/2.png" }!
        XCTAssertEqual(Set(third.images.train[index * 3 * 144 ..< (index + 1) * 3 * 144]), [201])
        XCTAssertTrue(try load(options).fromCache)
        // An added file too.
        try png("val/c0/new.png", width: 12, height: 12, value: flat(5))
        let fourth = try load(options)
        XCTAssertTrue(fourth.notes.contains { $0.contains("0 file(s) changed, 1 added") }, "\(fourth.notes)")

        // A damaged cache is not used (CRC-32), nor a truncated one.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: first.cachePath)))
        bytes[bytes.count - 100] ^= 1
        try writeFile(first.cachePath, bytes)
        let fifth = try load(options)
        XCTAssertFalse(fifth.fromCache)
        XCTAssertTrue(fifth.notes.contains { $0.contains("damaged") }, "\(fifth.notes)")
        XCTAssertEqual(fifth.images, fourth.images)
        try writeFile(first.cachePath, Array(bytes.prefix(50)))
        XCTAssertTrue(try load(options).notes.contains { $0.contains("truncated") })

        // --cache-dir: the cache goes there, named after the folder.
        let dir = try makeTempDir(self) + "/caches"
        let elsewhere = try load(ImageFolderOptions(imageSize: 12, cacheDir: dir))
        XCTAssertTrue(elsewhere.cachePath.hasPrefix(dir + "/"))
        XCTAssertTrue(elsewhere.cachePath.hasSuffix("-moco-cache-12px-auto.bin"))
        XCTAssertTrue(try load(ImageFolderOptions(imageSize: 12, cacheDir: dir)).fromCache)
    }

    func testUnwritableCacheIsANoteNotAnError() throws {
        try png("train/a/1.png", width: 8, height: 8, value: flat(1))
        try png("val/a/1.png", width: 8, height: 8, value: flat(1))
        // A cache directory that cannot be created (its parent is a file).
        try writeFile(root + "/file", [0])
        let r = try load(ImageFolderOptions(imageSize: 8, cacheDir: root + "/file/cache"))
        XCTAssertFalse(r.fromCache)
        XCTAssertTrue(r.notes.contains { $0.contains("cannot create the cache directory") && $0.contains("the next start decodes again") }, "\(r.notes)")
    }

    // MARK: - Export

    /// The exporter's PNGs read back at their own size are the dataset's bytes, with its labels.
    func testExportedDatasetsReadBackPixelExact() throws {
        for channels in [1, 3] {
            let out = try makeTempDir(self)
            let train = Dataset.synthetic(split: .train, count: 40, channels: channels, height: 20, width: 20)
            let val = Dataset.synthetic(split: .test, count: 15, channels: channels, height: 20, width: 20)
            let n = try ImageFolderExport.write(train: train, val: val, classNames: DatasetKind.synthetic.classNames!, to: out,
                                                format: .png, limit: 30, threads: 2)
            XCTAssertEqual([n.train, n.val], [30, 15])
            let l = try ImageFolder.load(root: out, options: ImageFolderOptions(imageSize: 20), threads: 2)
            XCTAssertEqual(l.images.channels, channels)
            XCTAssertEqual(l.images.listing.classes, ["0_horizontal-bars", "1_vertical-bars", "2_ring", "3_plus", "4_x-cross",
                                                      "5_disk", "6_square", "7_triangle", "8_dot-grid", "9_l-corner"])
            let d = l.images.datasets()
            for (folder, source, files) in [(d.train, train, l.images.listing.train), (d.val, val, l.images.listing.val)] {
                for (j, f) in files.enumerated() {
                    let i = Int(f.path.split(separator: "/").last!.split(separator: ".").first!)!
                    XCTAssertEqual(folder.labels[j], source.labels[i])
                    XCTAssertEqual(folder.pixels[j * folder.imageSize ..< (j + 1) * folder.imageSize],
                                   source.pixels[i * source.imageSize ..< (i + 1) * source.imageSize], f.path)
                }
            }
            assertDataError(.invalidArgument, contains: ["already exists"]) {
                _ = try ImageFolderExport.write(train: train, val: val, classNames: DatasetKind.synthetic.classNames!, to: out,
                                                format: .png, threads: 1)
            }
        }
    }

    /// `size`: the exporter scales the images (here 20 -> 40 px, `ImageResize`), and reading them
    /// back at 40 px gives those scaled bytes.
    func testExportAtAnotherSizeWritesTheScaledImages() throws {
        let out = try makeTempDir(self)
        let train = Dataset.synthetic(split: .train, count: 10, channels: 1, height: 20, width: 20)
        let val = Dataset.synthetic(split: .test, count: 10, channels: 1, height: 20, width: 20)
        _ = try ImageFolderExport.write(train: train, val: val, classNames: DatasetKind.synthetic.classNames!, to: out,
                                        format: .png, size: 40, threads: 2)
        let first = try ImageFolderListing.scan(out).train[0]
        let big = try ImageCodec.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: out + "/" + first.path))))
        XCTAssertEqual([big.width, big.height, big.channels], [40, 40, 1])
        let l = try ImageFolder.load(root: out, options: ImageFolderOptions(imageSize: 40), threads: 2)
        for (j, f) in l.images.listing.train.enumerated() {
            let i = Int(f.path.split(separator: "/").last!.split(separator: ".").first!)!
            var scaled = [UInt8](repeating: 0, count: 1600)
            train.pixels.withUnsafeBufferPointer { src in   // one channel: CHW is HWC
                scaled.withUnsafeMutableBufferPointer {
                    ImageResize.resizeCentreCrop(src.baseAddress! + i * 400, height: 20, width: 20, channels: 1, size: 40, into: $0.baseAddress!)
                }
            }
            XCTAssertEqual(Array(l.images.train[j * 1600 ..< (j + 1) * 1600]), scaled, f.path)
            XCTAssertNotEqual(scaled, [UInt8](repeating: scaled[0], count: 1600))
        }
    }

    /// Real Fashion-MNIST images through the folder: the same pixels as the IDX reader.
    func testFashionMNISTThroughAFolderIsPixelExact() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist"), "dataset-fashion-mnist not installed")
        let train = try Dataset.load(.fashionMNIST, split: .train, directory: nil)
        let val = try Dataset.load(.fashionMNIST, split: .test, directory: nil)
        _ = try ImageFolderExport.write(train: train, val: val, classNames: DatasetKind.fashionMNIST.classNames!, to: root,
                                        format: .png, limit: 300, threads: 2)
        let d = try ImageFolder.load(root: root, options: ImageFolderOptions(imageSize: 28, channels: 1), threads: 2).images.datasets()
        XCTAssertEqual(d.train.count, 300)
        for (j, f) in try ImageFolderListing.scan(root).train.enumerated() {
            let i = Int(f.path.split(separator: "/").last!.split(separator: ".").first!)!
            XCTAssertEqual(d.train.labels[j], train.labels[i])
            XCTAssertEqual(d.train.pixels[j * 784 ..< (j + 1) * 784], train.pixels[i * 784 ..< (i + 1) * 784])
        }
        // JPEG is lossy but close.
        let jroot = try makeTempDir(self)
        _ = try ImageFolderExport.write(train: train, val: val, classNames: DatasetKind.fashionMNIST.classNames!, to: jroot,
                                        format: .jpeg(quality: 95), limit: 50, threads: 2)
        let j = try ImageFolder.load(root: jroot, options: ImageFolderOptions(imageSize: 28), threads: 2).images.datasets()
        XCTAssertEqual(j.train.channels, 1)
        XCTAssertEqual(j.train.count, 50)
    }
}
