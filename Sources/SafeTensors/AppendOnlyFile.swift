#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A log file that grows by whole records (`OUT/metrics.jsonl`, TensorBoard's event files).
///
/// Each `append` is one `write(2)` on an `O_APPEND` descriptor, with no buffer in the process,
/// so a crash of the process (kill -9 included) loses no record that `append` returned from.
/// If the write fails part-way (ENOSPC, EIO), the file is truncated back to its length before
/// the record and the error is thrown: the file never ends in part of a record.
public final class AppendOnlyFile {
    public let path: String
    private var fd: Int32

    /// Opens `path` for appending, creating it if needed (`exclusive`: it must not exist yet).
    public init(path: String, exclusive: Bool = false) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : 0), 0o644)
        guard fd >= 0 else { throw SafeTensorsError(path: path, message: "cannot open for appending: \(errnoString())") }
    }

    deinit { close() }

    /// Appends one record, all of it or nothing.
    public func append(_ record: [UInt8]) throws {
        guard fd >= 0 else { throw SafeTensorsError(path: path, message: "the file is closed") }
        let before = lseek(fd, 0, SEEK_END)
        var done = 0
        while done < record.count {
            let n = record.withUnsafeBytes { sysWrite(fd, $0.baseAddress! + done, record.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                let reason = errnoString()
                if before >= 0 { _ = ftruncate(fd, before) }
                throw SafeTensorsError(path: path, message: reason)
            }
            done += n
        }
    }

    public func close() {
        if fd >= 0 { _ = closeDescriptor(fd); fd = -1 }
    }
}

@inline(__always)
private func closeDescriptor(_ fd: Int32) -> Int32 {
    #if canImport(Darwin)
    return Darwin.close(fd)
    #elseif canImport(Musl)
    return Musl.close(fd)
    #else
    return Glibc.close(fd)
    #endif
}
