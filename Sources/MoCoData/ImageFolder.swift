import Foundation

/// What loading an image folder did, for the log.
public struct ImageFolderLoad: Sendable {
    public var images: ImageFolderImages
    /// True when the images came from the decoded cache.
    public var fromCache: Bool
    public var cachePath: String
    /// Why the cache was not used, a cache that could not be written, skipped files.
    public var notes: [String]
}

/// `--data folder` in one process: the decoded cache when it matches the folder, else every
/// image decoded on `threads` workers and the cache written for the next start. (Under mpirun
/// the trainer runs the same steps with the decoding shared among the ranks and one rank
/// writing the cache: `FolderLoading` in the MoCo module.)
public enum ImageFolder {
    public static func load(root: String, options: ImageFolderOptions, threads: Int, writeCache: Bool = true) throws -> ImageFolderLoad {
        try options.validate()
        let listing = try ImageFolderListing.scan(root)
        var notes = skippedNote(listing).map { [$0] } ?? []
        let path = ImageFolderCache.path(root: listing.root, options: options)
        switch ImageFolderCache.read(path, listing: listing, options: options) {
        case .hit(let images): return ImageFolderLoad(images: images, fromCache: true, cachePath: path, notes: notes)
        case .miss(let reason): notes.append(reason)
        }
        let forceGrey = options.channels == 1
        let train = try ImageFolderDecoder.decode(listing.train[...], root: listing.root, imageSize: options.imageSize,
                                                  forceGrey: forceGrey, threads: threads)
        let val = try ImageFolderDecoder.decode(listing.val[...], root: listing.root, imageSize: options.imageSize,
                                                forceGrey: forceGrey, threads: threads)
        let images = try ImageFolderImages.assemble(listing: listing, imageSize: options.imageSize, channels: options.channels,
                                                    trainRecords: train, valRecords: val)
        if writeCache {
            do { try ImageFolderCache.write(images, options: options, to: path) } catch {
                notes.append("\(error); the next start decodes again")
            }
        }
        return ImageFolderLoad(images: images, fromCache: false, cachePath: path, notes: notes)
    }

    /// "skipped 2 files that are not PNG or JPEG images (e.g. train/cat/notes.txt)", or nil.
    public static func skippedNote(_ listing: ImageFolderListing) -> String? {
        guard let first = listing.skipped.first else { return nil }
        return "skipped \(listing.skipped.count) file(s) that are not PNG or JPEG images by their extension (e.g. \(listing.root)/\(first))"
    }
}
