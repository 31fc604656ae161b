import ArgumentParser
import MoCo
import MoCoComm
import MoCoData

/// The image formats `moco export-folder` writes.
enum ExportFormat: String, CaseIterable, ExpressibleByArgument {
    case png, jpeg
}

/// `moco export-folder`: a built-in dataset written as an image folder, to check the folder
/// reader (`--data folder`) against the built-in readers and to make test folders.
struct ExportFolder: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-folder",
        abstract: "Write a dataset as an image folder: OUT/train/<label>_<class>/<index>.png and OUT/val/... (torchvision's ImageFolder layout).",
        discussion: """
            The test split becomes val. Class folders are the label, zero-padded, and the class name, so their sorted order \
            is the label order; file names are the image's index in its split. PNG is lossless: `moco train --data folder \
            --data-dir OUT --image-size 28 --channels 1` then sees exactly the pixels of `--data fashion-mnist`.
            """)

    @Option(help: "Dataset to export.") var data: DatasetKind = .fashionMNIST
    @Option(help: "Directory of the dataset files (as moco train).") var dataDir: String?
    @Option(help: "The image folder to write (OUT/train and OUT/val must not exist yet).") var out: String
    @Option(help: "Export only the first N images of each split.") var limit: Int?
    @Option(help: "Resize every image to SIZE x SIZE before writing it (bilinear; larger files for measuring the reader).") var size: Int?
    @Option(help: "Image format.") var format: ExportFormat = .png
    @Option(help: "JPEG quality (1-100).") var quality = 95
    @Option(help: "Encoding threads (default: the cores).") var threads: Int?

    func run() throws {
        Runtime.run { _ in
            guard data != .folder, let names = data.classNames else {
                throw ValidationError("--data \(data.rawValue) cannot be exported (choose fashion-mnist, mnist, cifar10 or synthetic)")
            }
            guard limit.map({ $0 > 0 }) ?? true else { throw ValidationError("--limit must be positive") }
            guard size.map({ (1...4096).contains($0) }) ?? true else { throw ValidationError("--size must be 1...4096") }
            guard (1...100).contains(quality) else { throw ValidationError("--quality must be 1...100 (got \(quality))") }
            let train = try Dataset.load(data, split: .train, directory: dataDir)
            let val = try Dataset.load(data, split: .test, directory: dataDir)
            let clock = Stopwatch()
            let n = try ImageFolderExport.write(train: train, val: val, classNames: names, to: out,
                                                format: format == .png ? .png : .jpeg(quality: quality), limit: limit, size: size,
                                                threads: threads ?? Runtime.defaultThreads())
            emit(String(format: "wrote %d train and %d val images (%@, %dx%d, %d channel(s)) to %@/train and %@/val in %.1f s; "
                        + "train on them with: moco train --data folder --data-dir %@ --image-size %d --channels %d",
                        n.train, n.val, format.rawValue, size ?? train.width, size ?? train.height, train.channels, out, out,
                        clock.elapsed, out, size ?? train.height, train.channels))
        }
    }
}
