#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// `OUT/metrics.jsonl`: one JSON object per line (`type` train or knn), appended, so that a
/// resumed run continues the same file.
///
/// Each record is one `write(2)` on an O_APPEND descriptor; if it fails part-way (ENOSPC, EIO),
/// the file is truncated back to its length before the record, so it never ends in half a line,
/// and the error is thrown (the trainer stops every rank with it).
final class MetricsLog {
    private var fd: Int32
    let path: String

    init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ConfigError("cannot open \(path) for appending: \(String(cString: strerror(errno)))") }
    }

    deinit { close() }

    func write(_ fields: [String: Any]) throws {
        guard fd >= 0 else { throw ConfigError("\(path) is closed") }
        var line = [UInt8](try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]))
        line.append(UInt8(ascii: "\n"))
        let before = lseek(fd, 0, SEEK_END)
        var done = 0
        while done < line.count {
            let n = line.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, line.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                if before >= 0 { _ = ftruncate(fd, before) }
                throw ConfigError("cannot write metrics to \(path): \(reason)")
            }
            done += n
        }
    }

    func close() {
        if fd >= 0 { _ = Glibc.close(fd); fd = -1 }
    }
}
