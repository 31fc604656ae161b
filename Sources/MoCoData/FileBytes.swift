import CZlib
import Foundation

/// Whole-file reads of raw or gzip-compressed data files.
enum FileBytes {
    static func exists(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && !isDir.boolValue
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    /// The bytes of `path`; a name ending in `.gz` is decompressed with zlib's `gzread`.
    static func read(_ path: String) throws -> [UInt8] {
        if path.hasSuffix(".gz") { return try readGzip(path) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(.missingFile, path: path, "cannot read \(path)")
        }
        return [UInt8](data)
    }

    /// Decompresses a gzip file. A stream cut short (zlib reports `Z_BUF_ERROR` after the last
    /// partial read) or a CRC/format error (`gzread` returns -1) is a corrupt-file error.
    static func readGzip(_ path: String) throws -> [UInt8] {
        guard let f = gzopen(path, "rb") else {
            throw DataError(.missingFile, path: path, "cannot open \(path) for reading")
        }
        defer { gzclose(f) }
        _ = gzbuffer(f, 1 << 18)
        var out = [UInt8]()
        let chunk = 1 << 20
        let buf = UnsafeMutablePointer<UInt8>.allocate(capacity: chunk)
        defer { buf.deallocate() }
        while true {
            let n = gzread(f, buf, UInt32(chunk))
            if n < 0 { throw gzipError(f, path, after: out.count) }
            if n == 0 { break }
            out.append(contentsOf: UnsafeBufferPointer(start: buf, count: Int(n)))
        }
        var errnum: Int32 = 0
        _ = gzerror(f, &errnum)
        if errnum != Z_OK { throw gzipError(f, path, after: out.count) }
        return out
    }

    private static func gzipError(_ f: gzFile, _ path: String, after bytes: Int) -> DataError {
        var errnum: Int32 = 0
        let msg = gzerror(f, &errnum).map { String(cString: $0) } ?? "unknown error"
        let what = errnum == Z_BUF_ERROR ? "gzip stream truncated (\(msg))" : "gzip error \(errnum) (\(msg))"
        return .corrupt(path, "\(what) after \(bytes) decompressed bytes")
    }
}
