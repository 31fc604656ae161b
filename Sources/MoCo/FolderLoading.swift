import Foundation
import MoCoComm
import MoCoData
import MoCoTensor

/// `--data folder` on every rank of a job (one process is a job of one rank).
///
/// Every rank ends up holding both splits whole, as it does for the other datasets (the
/// sampler gives each rank its slice of every global batch, and the kNN monitor and linear
/// evaluation split the features among the ranks, so each needs every image): count x C x S x S
/// bytes per split, 60000 x 28 x 28 = 47 MB for Fashion-MNIST's size, 1.28 M x 3 x 32 x 32 =
/// 3.9 GB for ImageNet at 32 px.
///
/// 1. Every rank scans the folder; the ranks compare the listing's fingerprint, so a folder
///    that is not shared (or changes while the job starts) is an error, not a silent mismatch.
/// 2. Every rank reads the decoded cache; if it matches on all of them, that is the data.
/// 3. Otherwise the images are decoded in rounds of `roundImagesPerRank` per rank: in each round
///    rank r decodes its contiguous share on its engine threads and the shares are all-gathered
///    in rank order, so every rank has every image after the last round, decoded once in all.
///    Each round is a collective and beats the watchdog, so a long first start is progress,
///    not a stall.
/// 4. Rank 0 alone writes the cache (atomically). A cache that cannot be written (a read-only
///    folder) is a note in the log, not an error: the run goes on, the next start decodes again.
///
/// The data code (`ImageFolderListing`, `ImageFolderDecoder`, `ImageFolderCache`) neither calls
/// the communicator nor knows ranks; only this caller does.
public enum FolderLoading {
    public static let roundImagesPerRank = 512

    /// -> the training set (`D/train`) and the evaluation set (`D/val`).
    public static func load(root: String, options: ImageFolderOptions, comm: Communicator, threads: Int,
                            log: (String) -> Void) throws -> (train: Dataset, test: Dataset) {
        let clock = Stopwatch()
        let listing = try comm.agreeing { () -> ImageFolderListing in
            try options.validate()
            return try ImageFolderListing.scan(root)
        }
        let prints = try comm.allgather(Int64(bitPattern: listing.fingerprint))
        let differing = prints.enumerated().filter { $0.element != prints[0] }.map(\.offset)
        if !differing.isEmpty {
            // Every rank computed the same list: stop together with one message.
            let e = ConfigError("the ranks see different files in \(root): rank(s) \(differing.map(String.init).joined(separator: ", ")) "
                                + "differ from rank 0 (the folder must be the same on every host, and unchanged while the job starts)")
            try comm.agree(e)
            throw e
        }
        if let note = ImageFolder.skippedNote(listing) { log(note) }
        let total = listing.train.count + listing.val.count
        let path = ImageFolderCache.path(root: listing.root, options: options)
        let lookup = ImageFolderCache.read(path, listing: listing, options: options)
        var cached: ImageFolderImages?
        var reason = ""
        switch lookup {
        case .hit(let images): cached = images
        case .miss(let why): reason = why
        }
        let everyRankHit = try comm.allreduce(cached == nil ? 0 : 1, op: .min) == 1
        if everyRankHit, let cached {
            log(String(format: "image folder %@: %d classes, %d train + %d val images of %d x %dx%d from the decoded cache %@ (%.1f s)",
                       root, listing.classes.count, listing.train.count, listing.val.count, cached.channels, options.imageSize,
                       options.imageSize, path, clock.elapsed))
            let d = cached.datasets()
            return (d.train, d.val)
        }
        log("image folder \(root): \(listing.classes.count) classes, \(listing.train.count) train + \(listing.val.count) val images; "
            + (cached == nil ? reason : "the decoded cache is not readable on every rank") + "; decoding on \(comm.size) rank(s) x \(threads) thread(s)")

        let W = comm.size, round = roundImagesPerRank * W
        var records: [[UInt8]] = [[], []]
        var done = 0
        var lastReport = clock.elapsed
        for (s, files) in [listing.train, listing.val].enumerated() {
            var start = 0
            while start < files.count {
                let end = min(files.count, start + round)
                let share = Parallel.partition(end - start, parts: W, comm.rank)
                comm.watchdog?.beat("decoding images \(done + 1)-\(done + end - start) of \(total) in \(root)")
                let mine = try comm.agreeing {
                    try ImageFolderDecoder.decode(files[(start + share.lowerBound)..<(start + share.upperBound)], root: listing.root,
                                                  imageSize: options.imageSize, forceGrey: options.channels == 1, threads: threads)
                }
                for part in try comm.allgather(bytes: mine) { records[s].append(contentsOf: part) }
                done += end - start
                start = end
                if clock.elapsed - lastReport >= 10 && done < total {
                    lastReport = clock.elapsed
                    log(String(format: "decoded %d/%d images (%.0f images/s)", done, total, Double(done) / clock.elapsed))
                }
            }
        }
        let images = try comm.agreeing {
            try ImageFolderImages.assemble(listing: listing, imageSize: options.imageSize, channels: options.channels,
                                           trainRecords: records[0], valRecords: records[1])
        }
        records = []
        let decodeSeconds = clock.elapsed
        var wrote = ""
        if comm.rank == 0 {
            do {
                try ImageFolderCache.write(images, options: options, to: path)
                wrote = "; wrote the decoded cache \(path)"
            } catch {
                wrote = "; note: \(error); the next start decodes again"
            }
        }
        log(String(format: "decoded %d images to %d x %dx%d in %.1f s (%.0f images/s)%@", total, images.channels, options.imageSize,
                   options.imageSize, decodeSeconds, Double(total) / max(decodeSeconds, 1e-9), wrote))
        let d = images.datasets()
        return (d.train, d.val)
    }
}
