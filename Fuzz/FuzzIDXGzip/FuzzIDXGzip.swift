// libFuzzer target: the input is a gzip-compressed IDX image file (`train-images-idx3-ubyte.gz`),
// written to a temporary `.gz` file and read through `IDX.read(path:)`, the loader's zlib path
// (`gzread`: truncated streams, bad CRCs, trailing garbage, several members, and data that is
// not gzip at all, which zlib passes through). An array that reads must have as many bytes as
// the product of its dimensions. A thrown error is the right answer to a bad file; a trap is a
// bug. (Slower than the in-memory targets: a file write and zlib's buffers per input.)
import Foundation
import MoCoData

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = removeAtExit
    // Plain write(2): FileManager.createFile writes atomically with an fsync, 100x slower here.
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0, write(fd, data, size) == size, close(fd) == 0 else { fatalError("cannot write \(path)") }
    guard let a = try? IDX.read(path: path, dimensions: 3) else { return 0 }
    precondition(a.dims.count == 3 && a.dims[0] * a.dims[1] * a.dims[2] == a.bytes.count, "dims \(a.dims), \(a.bytes.count) bytes")
    return 0
}

/// In /dev/shm when there is one: rewriting a file in place on ext4 waits for the disk at each
/// close (its replace-by-truncate heuristic), 6x slower than the rest of an execution.
let path = (FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm/" : NSTemporaryDirectory())
    + "moco-fuzz-idx-\(ProcessInfo.processInfo.processIdentifier).gz"

/// The file goes when libFuzzer exits (`exit` runs `atexit` handlers; after a crash it stays).
let removeAtExit: Void = { _ = atexit { _ = unlink(path) } }()
