/// An in-memory image classification dataset: `count` images of `channels` x `height` x
/// `width` unsigned bytes (NCHW), integer labels, and the per-channel mean and standard
/// deviation (on the 0...1 scale) that `Normalize` uses.
///
/// Immutable after construction, hence shared freely between threads.
public final class Dataset: @unchecked Sendable {
    public let name: String
    public let count: Int
    public let channels: Int
    public let height: Int
    public let width: Int
    /// count * channels * height * width bytes, NCHW, 0...255.
    public let pixels: [UInt8]
    public let labels: [Int32]
    public let numClasses: Int
    public let mean: [Float]
    public let std: [Float]

    public var imageSize: Int { channels * height * width }

    public init(name: String, channels: Int, height: Int, width: Int, pixels: [UInt8], labels: [Int32],
                numClasses: Int, mean: [Float], std: [Float]) {
        precondition(channels > 0 && height > 0 && width > 0, "Dataset: empty image shape")
        precondition(pixels.count == labels.count * channels * height * width,
                     "Dataset: \(pixels.count) pixel bytes for \(labels.count) images of \(channels)x\(height)x\(width)")
        precondition(mean.count == channels && std.count == channels, "Dataset: mean/std need \(channels) values")
        precondition(std.allSatisfy { $0 > 0 }, "Dataset: std must be positive")
        self.name = name
        self.count = labels.count
        self.channels = channels
        self.height = height
        self.width = width
        self.pixels = pixels
        self.labels = labels
        self.numClasses = numClasses
        self.mean = mean
        self.std = std
    }

    /// Per-channel mean and (population) standard deviation of `pixels` / 255.
    public static func channelStatistics(pixels: [UInt8], channels: Int, planeSize: Int) -> (mean: [Float], std: [Float]) {
        let n = pixels.count / (channels * planeSize)
        var sums = [Double](repeating: 0, count: channels)
        var squares = [Double](repeating: 0, count: channels)
        pixels.withUnsafeBufferPointer { p in
            let base = p.baseAddress!
            for c in 0..<channels {
                var s: UInt64 = 0, q: UInt64 = 0
                for i in 0..<n {
                    let plane = base + (i * channels + c) * planeSize
                    for k in 0..<planeSize { let v = UInt64(plane[k]); s += v; q += v * v }
                }
                sums[c] = Double(s); squares[c] = Double(q)
            }
        }
        let m = Double(max(1, n * planeSize))
        var mean = [Float](), std = [Float]()
        for c in 0..<channels {
            let mu = sums[c] / m
            let variance = max(0, squares[c] / m - mu * mu)
            mean.append(Float(mu / 255))
            std.append(Float(max(variance.squareRoot(), 1e-3) / 255))
        }
        return (mean, std)
    }
}

/// The datasets `Dataset.load` knows. The raw value is the command-line name.
public enum DatasetKind: String, CaseIterable, Sendable, Codable {
    case fashionMNIST = "fashion-mnist"
    case mnist
    case cifar10
    case synthetic
    /// torchvision's ImageFolder layout, `D/train/<class>/*` and `D/val/<class>/*` (PNG, JPEG):
    /// loaded with its `ImageFolderOptions` (`ImageFolder.load`), not by `Dataset.load`.
    case folder

    /// Where the Debian package puts the files, if there is one.
    public var defaultDirectory: String? {
        switch self {
        case .fashionMNIST: return "/usr/share/datasets/fashion-mnist"
        case .mnist, .cifar10, .synthetic, .folder: return nil
        }
    }

    /// Class names in label order (torchvision's for Fashion-MNIST and CIFAR-10; the shape
    /// families of `Dataset.synthetic`); nil for a folder, whose classes are its subfolders.
    public var classNames: [String]? {
        switch self {
        case .fashionMNIST: return ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
        case .mnist: return (0..<10).map { "digit-\($0)" }
        case .cifar10: return ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        case .synthetic: return ["horizontal-bars", "vertical-bars", "ring", "plus", "x-cross", "disk", "square", "triangle", "dot-grid", "l-corner"]
        case .folder: return nil
        }
    }

    /// Published normalisation constants (torchvision/MoCo community values).
    public var publishedMeanStd: (mean: [Float], std: [Float])? {
        switch self {
        case .fashionMNIST: return ([0.2860], [0.3530])
        case .mnist: return ([0.1307], [0.3081])
        case .cifar10: return ([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616])
        case .synthetic, .folder: return nil
        }
    }
}

public enum Split: String, Sendable {
    case train, test
}

extension Dataset {
    /// Loads a dataset from `directory` (or the kind's default directory).
    ///
    /// - Fashion-MNIST / MNIST: the four IDX files `train-images-idx3-ubyte`,
    ///   `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each
    ///   either gzip-compressed (`.gz`) or not. Fashion-MNIST defaults to the Debian package
    ///   `dataset-fashion-mnist`; MNIST has no Debian package and needs a directory.
    /// - CIFAR-10: `data_batch_1.bin` ... `data_batch_5.bin` and `test_batch.bin` of the binary
    ///   version, in `directory` or its `cifar-10-batches-bin` subdirectory.
    /// - synthetic: `Dataset.synthetic` with its defaults; `directory` is ignored.
    public static func load(_ kind: DatasetKind, split: Split, directory: String?) throws -> Dataset {
        switch kind {
        case .folder:
            throw DataError(.invalidArgument, "--data folder is loaded with its options (ImageFolder.load), not Dataset.load")
        case .synthetic:
            return synthetic(split: split)
        case .fashionMNIST, .mnist:
            let label = kind == .mnist ? "MNIST" : "Fashion-MNIST"
            let how = kind == .mnist
                ? "MNIST has no Debian package: put the four IDX files (train-images-idx3-ubyte.gz, "
                    + "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in a "
                    + "directory and pass it with --data-dir"
                : "install the Debian package with `apt-get install dataset-fashion-mnist`, or pass --data-dir "
                    + "with a directory holding the four IDX files"
            guard let dir = directory ?? kind.defaultDirectory else {
                throw DataError(.missingFile, "\(label) needs a data directory: \(how)")
            }
            let prefix = split == .train ? "train" : "t10k"
            let images = try resolve(dir, "\(prefix)-images-idx3-ubyte", dataset: label, how: how)
            let labels = try resolve(dir, "\(prefix)-labels-idx1-ubyte", dataset: label, how: how)
            let ms = kind.publishedMeanStd!
            return try loadIDX(name: "\(kind.rawValue)-\(split.rawValue)", imagesPath: images, labelsPath: labels,
                               mean: ms.mean, std: ms.std)
        case .cifar10:
            let how = "download the CIFAR-10 binary version (cifar-10-binary.tar.gz, "
                + "https://www.cs.toronto.edu/~kriz/cifar.html), unpack it and pass --data-dir with the "
                + "cifar-10-batches-bin directory (or its parent)"
            guard let given = directory else {
                throw DataError(.missingFile, "CIFAR-10 needs a data directory: \(how)")
            }
            let sub = given + "/cifar-10-batches-bin"
            let files = split == .train ? CIFAR10.trainFiles : CIFAR10.testFiles
            let dir = !FileBytes.exists(given + "/" + files[0]) && FileBytes.isDirectory(sub) ? sub : given
            var pixels = [UInt8](), labels = [Int32]()
            for f in files {
                let path = dir + "/" + f
                guard FileBytes.exists(path) else {
                    throw DataError(.missingFile, path: path, "CIFAR-10 file \(path) not found: \(how)")
                }
                let batch = try CIFAR10.readBatch(path: path)
                pixels += batch.pixels
                labels += batch.labels
            }
            let ms = kind.publishedMeanStd!
            return Dataset(name: "cifar10-\(split.rawValue)", channels: 3, height: 32, width: 32, pixels: pixels,
                           labels: labels, numClasses: 10, mean: ms.mean, std: ms.std)
        }
    }

    /// `dir/name` if present, else `dir/name.gz`, else a missing-file error saying how to get it.
    static func resolve(_ dir: String, _ name: String, dataset: String, how: String) throws -> String {
        let raw = dir + "/" + name
        if FileBytes.exists(raw) { return raw }
        if FileBytes.exists(raw + ".gz") { return raw + ".gz" }
        throw DataError(.missingFile, path: raw + ".gz",
                        "\(dataset) file \(raw).gz (or uncompressed \(raw)) not found: \(how)")
    }
}
