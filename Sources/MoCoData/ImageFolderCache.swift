import CZlib
import Foundation
import SafeTensors
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The decoded cache of an image folder: one binary file holding both splits' decoded images,
/// so that a second start reads them instead of decoding every file again.
///
/// Layout (every integer little-endian; strings are a u32 byte count and UTF-8 bytes):
///
///     "MOCOIMGF"                    8 bytes
///     version                       u32 (ImageFolderCache.version)
///     resize method                 u32 (ImageFolderCache.resizeMethod: ImageResize's filter and crop)
///     image size                    u32
///     requested channels            u32 (0 = from the data, 1, 3)
///     channels                      u32 (of the stored images)
///     class count, class names      u32, strings
///     train file count, files       u32, per file: path (string, relative to the folder), label u32,
///                                   size u64, modification time i64 (ns)
///     val file count, files         the same
///     train pixels, val pixels      count x channels x size x size bytes each (NCHW)
///     CRC-32 of all bytes before it u32 (zlib's crc32, ISO 3309)
///
/// The cache is used only if its header matches the folder as scanned now, class for class and
/// file for file (path, label, size, modification time), the options and the version, and its
/// CRC verifies; anything else is a miss with the reason, and the folder is decoded again.
/// It is written atomically (`AtomicFile`: a temporary file, fsync, rename), so a reader sees
/// the old file or the whole new one.
public enum ImageFolderCache {
    public static let version: UInt32 = 1
    /// Bumped whenever `ImageResize` or the decoders' conversions change their output.
    public static let resizeMethod: UInt32 = 1
    static let magic = Array("MOCOIMGF".utf8)

    /// Where the cache of `root` with `options` lives: `root/.moco-cache-<size>px-<channels>.bin`,
    /// or, with a cache directory, `<dir>/<folder name>-<hash of its absolute path>-moco-cache-...`
    /// (one directory can hold the caches of several folders).
    public static func path(root: String, options: ImageFolderOptions) -> String {
        let name = "moco-cache-\(options.imageSize)px-\(options.channels.map { "\($0)ch" } ?? "auto").bin"
        guard let dir = options.cacheDir else { return root + "/." + name }
        var absolute = root
        if let p = realpath(root, nil) { absolute = String(cString: p); free(p) }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in absolute.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        let base = absolute.split(separator: "/").last.map(String.init) ?? "root"
        return dir + "/" + base + "-" + String(format: "%016llx", h) + "-" + name
    }

    /// The cache file's bytes for `images`.
    public static func encode(_ images: ImageFolderImages, requestedChannels: Int?) -> [UInt8] {
        var w = ByteWriter()
        w.bytes(magic)
        w.u32(version); w.u32(resizeMethod); w.u32(UInt32(images.imageSize)); w.u32(UInt32(requestedChannels ?? 0))
        w.u32(UInt32(images.channels))
        w.u32(UInt32(images.listing.classes.count))
        for c in images.listing.classes { w.string(c) }
        for split in [images.listing.train, images.listing.val] {
            w.u32(UInt32(split.count))
            for f in split { w.string(f.path); w.u32(UInt32(f.label)); w.u64(UInt64(f.size)); w.u64(UInt64(bitPattern: f.mtime)) }
        }
        w.bytes(images.train)
        w.bytes(images.val)
        let crc = w.data.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, UInt32($0.count))) }
        w.u32(crc)
        return w.data
    }

    /// Writes the cache of `images` to `path` atomically (creating its directory if needed).
    public static func write(_ images: ImageFolderImages, options: ImageFolderOptions, to path: String) throws {
        if let dir = options.cacheDir, !FileManager.default.fileExists(atPath: dir) {
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                throw DataError(.invalidArgument, path: dir, "cannot create the cache directory \(dir): \(error.localizedDescription)")
            }
        }
        do { try AtomicFile.write(encode(images, requestedChannels: options.channels), to: path) } catch {
            throw DataError(.invalidArgument, path: path, "cannot write the decoded cache \(path): \(error)")
        }
    }

    public enum Lookup: Sendable {
        case hit(ImageFolderImages)
        /// Why the cache was not used, for the log.
        case miss(String)
    }

    /// The cached images of `listing` at `options` from `path`, or why not.
    public static func read(_ path: String, listing: ImageFolderListing, options: ImageFolderOptions) -> Lookup {
        guard FileManager.default.fileExists(atPath: path) else { return .miss("no decoded cache \(path) yet") }
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
            return .miss("cannot read the decoded cache \(path)")
        }
        return data.withUnsafeBytes { raw -> Lookup in
            var r = ByteReader(raw)
            guard let m = r.bytes(8), m.elementsEqual(magic), let v = r.u32() else {
                return .miss("\(path) is not a decoded cache (no MOCOIMGF header)")
            }
            guard v == version else { return .miss("\(path) is of cache version \(v), this build writes \(version)") }
            guard let method = r.u32(), let size = r.u32(), let requested = r.u32(), let channels = r.u32() else {
                return .miss("\(path) is truncated")
            }
            guard method == resizeMethod, Int(size) == options.imageSize, Int(requested) == options.channels ?? 0,
                  channels == 1 || channels == 3 else {
                return .miss("\(path) was made with other options or another resize method")
            }
            guard let classCount = r.u32(), let classes = r.strings(Int(classCount)) else { return .miss("\(path) is truncated") }
            var splits: [[ImageFolderFile]] = []
            for _ in 0..<2 {
                guard let n = r.u32(), Int(n) <= r.remaining else { return .miss("\(path) is truncated") }
                var files: [ImageFolderFile] = []
                files.reserveCapacity(Int(n))
                for _ in 0..<n {
                    guard let p = r.string(), let l = r.u32(), let s = r.u64(), let t = r.u64() else { return .miss("\(path) is truncated") }
                    files.append(ImageFolderFile(path: p, label: Int32(bitPattern: l), size: Int64(bitPattern: s), mtime: Int64(bitPattern: t)))
                }
                splits.append(files)
            }
            if classes != listing.classes || splits[0] != listing.train || splits[1] != listing.val {
                return .miss("\(path) is out of date: " + difference(classes: classes, train: splits[0], val: splits[1], listing: listing))
            }
            let image = Int(channels) * Int(size) * Int(size)
            let trainBytes = listing.train.count * image, valBytes = listing.val.count * image
            guard r.remaining == trainBytes + valBytes + 4 else {
                return .miss("\(path) has \(r.remaining) bytes of pixels and checksum, expected \(trainBytes + valBytes + 4)")
            }
            let body = raw.count - 4
            let stored = UInt32(raw[body]) | UInt32(raw[body + 1]) << 8 | UInt32(raw[body + 2]) << 16 | UInt32(raw[body + 3]) << 24
            let crc = UInt32(crc32(0, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt32(body)))
            guard crc == stored else { return .miss("\(path) is damaged (CRC-32 \(String(format: "%08x", crc)), stored \(String(format: "%08x", stored)))") }
            let train = copy(r.bytes(trainBytes)!), val = copy(r.bytes(valBytes)!)
            return .hit(ImageFolderImages(listing: listing, imageSize: Int(size), channels: Int(channels), train: train, val: val))
        }
    }

    /// The bytes of a slice of a mapped file, copied with one memcpy.
    static func copy(_ s: UnsafeRawBufferPointer.SubSequence) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: s.count) { buf, n in
            if s.count > 0 { UnsafeMutableRawPointer(buf.baseAddress!).copyMemory(from: s.base.baseAddress! + s.startIndex, byteCount: s.count) }
            n = s.count
        }
    }

    /// "3 files changed, 1 added, 0 removed" (or the classes changed).
    static func difference(classes: [String], train: [ImageFolderFile], val: [ImageFolderFile], listing: ImageFolderListing) -> String {
        if classes != listing.classes { return "the classes changed (\(classes.count) then, \(listing.classes.count) now)" }
        var old: [String: ImageFolderFile] = [:]
        for f in train + val { old[f.path] = f }
        var changed = 0, added = 0, kept = 0
        for f in listing.train + listing.val {
            if let o = old[f.path] { if o == f { kept += 1 } else { changed += 1 } } else { added += 1 }
        }
        let removed = old.count - kept - changed
        let moved = changed == 0 && added == 0 && removed == 0 ? " (the same files in another order)" : ""
        return "\(changed) file(s) changed, \(added) added, \(removed) removed\(moved)"
    }
}

/// Little-endian serialisation into a byte array.
struct ByteWriter {
    var data: [UInt8] = []
    mutating func bytes<C: Collection>(_ b: C) where C.Element == UInt8 { data.append(contentsOf: b) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    mutating func string(_ s: String) { u32(UInt32(s.utf8.count)); data.append(contentsOf: s.utf8) }
}

/// Bounds-checked little-endian reads; nil past the end.
struct ByteReader {
    let raw: UnsafeRawBufferPointer
    var at = 0
    init(_ raw: UnsafeRawBufferPointer) { self.raw = raw }
    var remaining: Int { raw.count - at }

    mutating func bytes(_ n: Int) -> UnsafeRawBufferPointer.SubSequence? {
        guard n >= 0, n <= remaining else { return nil }
        defer { at += n }
        return raw[at..<at + n]
    }
    mutating func u32() -> UInt32? {
        guard let b = bytes(4) else { return nil }
        return b.reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }
    mutating func u64() -> UInt64? {
        guard let b = bytes(8) else { return nil }
        return b.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }
    mutating func string() -> String? {
        guard let n = u32(), let b = bytes(Int(n)) else { return nil }
        return String(decoding: b, as: UTF8.self)
    }
    mutating func strings(_ n: Int) -> [String]? {
        guard n <= remaining else { return nil }
        var out: [String] = []
        for _ in 0..<n { guard let s = string() else { return nil }; out.append(s) }
        return out
    }
}
