#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Crash-safe whole-file writes.
///
/// `write(_:to:)` writes the bytes to `<path>.tmp.<pid>` in the destination's directory, fsyncs
/// it, renames it over `path` (atomic on POSIX file systems) and fsyncs the directory so the rename
/// itself is durable. A reader therefore sees either the old file or the complete new one, never a
/// partial write; after a crash at most a stale `*.tmp.<pid>` file can remain.
public enum AtomicFile {
    /// Atomically replaces (or creates) `path` with `bytes`.
    ///
    /// On any failure before the rename, the temporary file is removed, `path` is untouched and a
    /// `SafeTensorsError` naming the failing step is thrown. If only the final directory fsync
    /// fails, the new file is already in place but its durability is not guaranteed; that is
    /// reported as an error too.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let tmp = "\(path).tmp.\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw SafeTensorsError(path: path, message: "cannot create temporary file '\(tmp)': \(errnoString())")
        }
        var closed = false
        var renamed = false
        defer {
            if !closed { _ = close(fd) }
            if !renamed { _ = unlink(tmp) }
        }

        try bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = sysWrite(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SafeTensorsError(path: path, message: "writing '\(tmp)' failed after \(done) of \(raw.count) bytes: \(errnoString())")
                }
                done += n
            }
        }
        guard fsync(fd) == 0 else {
            throw SafeTensorsError(path: path, message: "fsync of '\(tmp)' failed: \(errnoString())")
        }
        closed = true
        guard close(fd) == 0 else {
            throw SafeTensorsError(path: path, message: "close of '\(tmp)' failed: \(errnoString())")
        }
        guard rename(tmp, path) == 0 else {
            throw SafeTensorsError(path: path, message: "rename of '\(tmp)' to '\(path)' failed: \(errnoString())")
        }
        renamed = true

        let dir = directoryName(of: path)
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else {
            throw SafeTensorsError(path: path, message: "cannot open directory '\(dir)' to fsync it: \(errnoString())")
        }
        defer { _ = close(dfd) }
        guard fsync(dfd) == 0 else {
            throw SafeTensorsError(path: path, message: "fsync of directory '\(dir)' failed: \(errnoString())")
        }
    }

    /// The directory part of `path` (`"."` when there is none), like POSIX `dirname`.
    static func directoryName(of path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return "." }
        var dir = p[..<slash]
        while dir.count > 1 && dir.hasSuffix("/") { dir = dir.dropLast() }
        return dir.isEmpty ? "/" : String(dir)
    }
}

/// `write(2)`, named apart from the methods so the calls inside `AtomicFile.write` and
/// `AppendOnlyFile` are unambiguous.
@inline(__always)
func sysWrite(_ fd: Int32, _ buf: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Darwin)
    return Darwin.write(fd, buf, count)
    #elseif canImport(Musl)
    return Musl.write(fd, buf, count)
    #else
    return Glibc.write(fd, buf, count)
    #endif
}

/// `strerror(errno)` with the number, e.g. `No such file or directory (errno 2)`.
func errnoString(_ code: Int32 = errno) -> String {
    "\(String(cString: strerror(code))) (errno \(code))"
}
