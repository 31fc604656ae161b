/// How `--data folder` turns an image folder into a dataset: the side of the square images
/// (`--image-size`), their channels (`--channels`), and where the decoded cache goes
/// (`--cache-dir`).
public struct ImageFolderOptions: Equatable, Sendable {
    /// `--image-size` when not given: CIFAR-sized images, which ResNet-20 is built for.
    public static let defaultImageSize = 32
    public static let imageSizeRange = 8...512

    /// Side of the square each image is resized and centre-cropped to (`ImageResize`).
    public var imageSize: Int
    /// 1 (colour images become grey by BT.601 luma) or 3 (grey images are repeated into three
    /// planes); nil: from the data, 1 when every image of both splits is grey, else 3.
    public var channels: Int?
    /// Directory of the decoded cache; nil: the image folder itself (`D/.moco-cache-...`).
    public var cacheDir: String?

    public init(imageSize: Int = defaultImageSize, channels: Int? = nil, cacheDir: String? = nil) {
        self.imageSize = imageSize; self.channels = channels; self.cacheDir = cacheDir
    }

    public func validate() throws {
        guard Self.imageSizeRange.contains(imageSize) else {
            throw DataError(.invalidArgument, "--image-size must be in \(Self.imageSizeRange.lowerBound)...\(Self.imageSizeRange.upperBound) (got \(imageSize))")
        }
        if let c = channels, c != 1 && c != 3 {
            throw DataError(.invalidArgument, "--channels must be 1 or 3 (got \(c))")
        }
    }
}
