#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One image of an image folder: its path relative to the folder's root (`train/cat/0001.png`),
/// its label (index of its class among the training classes), and its size and modification
/// time, which the decoded cache compares.
public struct ImageFolderFile: Equatable, Sendable {
    public var path: String
    public var label: Int32
    public var size: Int64
    /// Modification time in nanoseconds since 1970.
    public var mtime: Int64

    public init(path: String, label: Int32, size: Int64, mtime: Int64) {
        self.path = path; self.label = label; self.size = size; self.mtime = mtime
    }
}

/// The files of a torchvision `ImageFolder` dataset with a train and a val split:
/// `D/train/<class>/*` and `D/val/<class>/*`.
///
/// As torchvision's `ImageFolder`: the classes are the subfolders of `D/train` in sorted order
/// (by code point, as Python's `sorted`); label i is the i-th class; each class folder is
/// walked recursively, following symbolic links, and its files are taken directory by directory
/// in sorted order of the directory's path, each directory's files sorted by name. Unlike it:
/// - val's labels come from train's class list, so a class missing from `D/val` does not shift
///   the labels of the others, and a class folder in `D/val` that `D/train` lacks is an error;
/// - entries whose name starts with `.` (`.DS_Store`, `.ipynb_checkpoints`) are ignored;
/// - images are `.png`, `.jpg` and `.jpeg` files (any case); a file with another of
///   torchvision's image extensions (`.bmp`, `.gif`, `.pgm`, `.ppm`, `.tif`, `.tiff`, `.webp`) is
///   an error, since it cannot be decoded here; any other file is skipped and listed in `skipped`.
/// A root without `train` or `val`, a split without class folders and a class folder without
/// images are errors that say so.
public struct ImageFolderListing: Equatable, Sendable {
    public var root: String
    public var classes: [String]
    public var train: [ImageFolderFile]
    public var val: [ImageFolderFile]
    /// Files skipped as not images (relative paths).
    public var skipped: [String]

    public static let imageExtensions: Set<String> = ["png", "jpg", "jpeg"]
    public static let unsupportedImageExtensions: Set<String> = ["bmp", "gif", "pgm", "ppm", "tif", "tiff", "webp"]

    /// Scans `root` (nothing is read but directories and file metadata).
    public static func scan(_ root: String) throws -> ImageFolderListing {
        var root = root
        while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
        guard let st = FileStat(root) else {
            throw DataError(.missingFile, path: root, "image folder \(root) not found (--data folder reads \(root)/train/<class>/* and \(root)/val/<class>/*)")
        }
        guard st.isDirectory else { throw DataError(.badLayout, path: root, "\(root) is not a directory") }
        var skipped: [String] = []
        var listing = ImageFolderListing(root: root, classes: [], train: [], val: [], skipped: [])
        let trainClasses = try classFolders(root, "train")
        listing.classes = trainClasses
        let index = Dictionary(uniqueKeysWithValues: trainClasses.enumerated().map { ($0.element, Int32($0.offset)) })
        for name in trainClasses {
            listing.train += try images(root, "train/" + name, label: index[name]!, skipped: &skipped)
        }
        let valClasses = try classFolders(root, "val")
        if let stray = valClasses.first(where: { index[$0] == nil }) {
            throw DataError(.badLayout, path: root + "/val/" + stray,
                            "class '\(stray)' is in \(root)/val but not in \(root)/train (the training classes are \(summary(trainClasses)))")
        }
        for name in valClasses {
            listing.val += try images(root, "val/" + name, label: index[name]!, skipped: &skipped)
        }
        listing.skipped = skipped
        return listing
    }

    /// A 64-bit FNV-1a hash of everything the listing holds but its root: ranks compare it to
    /// know they see the same files.
    public var fingerprint: UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix<S: Sequence>(_ bytes: S) where S.Element == UInt8 { for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 } }
        func mix(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { mix($0) } }
        for c in classes { mix(c.utf8); mix(0) }
        for split in [train, val] {
            mix(Int64(split.count))
            for f in split { mix(f.path.utf8); mix(Int64(f.label)); mix(f.size); mix(f.mtime) }
        }
        return h
    }

    /// The sorted, visible subfolders of `root/split`.
    static func classFolders(_ root: String, _ split: String) throws -> [String] {
        let dir = root + "/" + split
        guard let st = FileStat(dir), st.isDirectory else {
            throw DataError(.missingFile, path: dir,
                            "\(dir) not found: --data folder reads \(root)/train/<class>/* and \(root)/val/<class>/* (torchvision's ImageFolder layout)")
        }
        let names = try entries(dir).filter { FileStat(dir + "/" + $0)?.isDirectory == true }
        guard !names.isEmpty else {
            throw DataError(.badLayout, path: dir, "\(dir) has no class folders (expected \(dir)/<class>/<image>)")
        }
        return names.sorted(by: codePointOrder)
    }

    /// The images under `root/relative` (a class folder), in torchvision's order.
    static func images(_ root: String, _ relative: String, label: Int32, skipped: inout [String]) throws -> [ImageFolderFile] {
        // Every directory under the class folder, as its path relative to the root.
        var dirs: [String] = []
        var visited = Set<[UInt64]>()
        func collect(_ rel: String) throws {
            let full = root + "/" + rel
            guard let st = FileStat(full), visited.insert([st.device, st.inode]).inserted else { return }  // a link cycle
            dirs.append(rel)
            for name in try entries(full) where FileStat(full + "/" + name)?.isDirectory == true { try collect(rel + "/" + name) }
        }
        try collect(relative)
        dirs.sort(by: codePointOrder)
        var files: [ImageFolderFile] = []
        for rel in dirs {
            let full = root + "/" + rel
            for name in try entries(full).sorted(by: codePointOrder) {
                let path = rel + "/" + name
                guard let st = FileStat(root + "/" + path) else {
                    throw DataError(.missingFile, path: root + "/" + path, "cannot read \(root)/\(path): \(String(cString: strerror(errno)))")
                }
                if st.isDirectory { continue }
                let ext = name.split(separator: ".", omittingEmptySubsequences: false).last.map { $0.lowercased() } ?? ""
                let hasExtension = name.contains(".")
                if hasExtension && imageExtensions.contains(ext) {
                    files.append(ImageFolderFile(path: path, label: label, size: st.size, mtime: st.mtime))
                } else if hasExtension && unsupportedImageExtensions.contains(ext) {
                    throw DataError(.badLayout, path: root + "/" + path,
                                    "\(root)/\(path): .\(ext) images are not supported (PNG and JPEG only); convert or remove it")
                } else {
                    skipped.append(path)
                }
            }
        }
        guard !files.isEmpty else {
            throw DataError(.badLayout, path: root + "/" + relative, "class folder \(root)/\(relative) holds no PNG or JPEG images (.png, .jpg, .jpeg)")
        }
        return files
    }

    /// The visible entries of a directory (not `.`, `..` or names starting with `.`), unsorted.
    static func entries(_ dir: String) throws -> [String] {
        guard let d = opendir(dir) else {
            throw DataError(.missingFile, path: dir, "cannot list \(dir): \(String(cString: strerror(errno)))")
        }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: &e.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if !name.hasPrefix(".") { names.append(name) }
        }
        return names
    }

    /// Python's string order: by code point, which is UTF-8 byte order.
    static func codePointOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    static func summary(_ names: [String]) -> String {
        names.count <= 8 ? names.joined(separator: ", ") : names.prefix(8).joined(separator: ", ") + ", ... (\(names.count))"
    }
}

/// `stat(2)` of a path (following symbolic links).
struct FileStat {
    let isDirectory: Bool
    let size: Int64
    let mtime: Int64
    let device: UInt64
    let inode: UInt64

    init?(_ path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        isDirectory = (st.st_mode & S_IFMT) == S_IFDIR
        size = Int64(st.st_size)
        #if os(Linux)
        mtime = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        #else
        mtime = Int64(st.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(st.st_mtimespec.tv_nsec)
        #endif
        device = UInt64(truncatingIfNeeded: st.st_dev)
        inode = UInt64(truncatingIfNeeded: st.st_ino)
    }
}
