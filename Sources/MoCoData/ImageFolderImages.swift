/// The decoded images of both splits of an image folder, at one size and channel count:
/// what the decoded cache stores and what becomes the training and evaluation `Dataset`s.
public struct ImageFolderImages: Equatable, Sendable {
    public let listing: ImageFolderListing
    public let imageSize: Int
    public let channels: Int
    /// [train.count, channels, imageSize, imageSize] bytes.
    public let train: [UInt8]
    /// [val.count, channels, imageSize, imageSize] bytes.
    public let val: [UInt8]

    public init(listing: ImageFolderListing, imageSize: Int, channels: Int, train: [UInt8], val: [UInt8]) {
        precondition(train.count == listing.train.count * channels * imageSize * imageSize
                     && val.count == listing.val.count * channels * imageSize * imageSize, "ImageFolderImages: pixel counts")
        self.listing = listing; self.imageSize = imageSize; self.channels = channels; self.train = train; self.val = val
    }

    /// From the packed records of `ImageFolderDecoder` for every training and every val file:
    /// `channels` when given, else 1 if every record is grey and 3 if any is colour; grey records
    /// are repeated into three planes where needed.
    public static func assemble(listing: ImageFolderListing, imageSize: Int, channels requested: Int?,
                                trainRecords: [UInt8], valRecords: [UInt8]) throws -> ImageFolderImages {
        let plane = imageSize * imageSize
        func scan(_ records: [UInt8], _ expected: Int, _ split: String) throws -> (count: Int, colour: Bool) {
            var at = 0, count = 0, colour = false
            while at < records.count {
                let c = Int(records[at])
                guard c == 1 || c == 3, at + 1 + c * plane <= records.count else {
                    throw DataError(.invalidArgument, "decoded \(split) records are malformed at byte \(at)")
                }
                colour = colour || c == 3
                at += 1 + c * plane
                count += 1
            }
            guard count == expected else {
                throw DataError(.invalidArgument, "\(count) decoded \(split) images for \(expected) files")
            }
            return (count, colour)
        }
        let t = try scan(trainRecords, listing.train.count, "train")
        let v = try scan(valRecords, listing.val.count, "val")
        let channels = requested ?? (t.colour || v.colour ? 3 : 1)
        func unpack(_ records: [UInt8], _ count: Int) throws -> [UInt8] {
            var out = [UInt8](repeating: 0, count: count * channels * plane)
            try records.withUnsafeBufferPointer { src in
                try out.withUnsafeMutableBufferPointer { dst in
                    var at = 0
                    for i in 0..<count {
                        let c = Int(src[at])
                        let from = src.baseAddress! + at + 1, to = dst.baseAddress! + i * channels * plane
                        if c == channels {
                            to.update(from: from, count: c * plane)
                        } else if c == 1 {
                            // [1, s, s] -> [3, s, s]: the grey plane in every channel.
                            for k in 0..<channels { (to + k * plane).update(from: from, count: plane) }
                        } else {
                            throw DataError(.invalidArgument, "a colour image was decoded for a 1-channel request")
                        }
                        at += 1 + c * plane
                    }
                }
            }
            return out
        }
        return ImageFolderImages(listing: listing, imageSize: imageSize, channels: channels,
                                 train: try unpack(trainRecords, t.count), val: try unpack(valRecords, v.count))
    }

    /// The training set (`<folder>-train`) and the evaluation set (`<folder>-val`), normalised
    /// with the per-channel mean and std of the training images.
    public func datasets() -> (train: Dataset, val: Dataset) {
        let base = listing.root.split(separator: "/").last.map(String.init) ?? "folder"
        let stats = Dataset.channelStatistics(pixels: train, channels: channels, planeSize: imageSize * imageSize)
        func make(_ split: String, _ pixels: [UInt8], _ files: [ImageFolderFile]) -> Dataset {
            Dataset(name: "\(base)-\(split)", channels: channels, height: imageSize, width: imageSize, pixels: pixels,
                    labels: files.map(\.label), numClasses: listing.classes.count, mean: stats.mean, std: stats.std)
        }
        return (make("train", train, listing.train), make("val", val, listing.val))
    }
}
