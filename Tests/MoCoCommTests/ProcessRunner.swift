import Foundation

/// Output and status of a child process run with a deadline.
struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
    var timedOut: Bool
    var seconds: Double
}

/// Collects a pipe's bytes on a background thread.
private final class PipeReader: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ pipe: Pipe) {
        let handle = pipe.fileHandleForReading
        Thread.detachNewThread { [self] in
            let bytes = handle.readDataToEndOfFile()      // returns at EOF: every writer closed
            lock.lock(); data = bytes; lock.unlock()
            done.signal()
        }
    }

    func text(waitingUpTo seconds: Double) -> String {
        _ = done.wait(timeout: .now() + seconds)
        lock.lock(); defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Runs `executable` with `arguments`, reading stdout and stderr concurrently *before* waiting
/// for exit (a child blocked on a full pipe would otherwise never exit). After `timeout` seconds
/// the child gets SIGTERM (mpirun forwards it to its ranks), then SIGKILL.
func runProcess(_ executable: URL, _ arguments: [String], environment: [String: String],
                timeout: Double) throws -> ProcessResult {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.environment = environment
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    let exited = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in exited.signal() }

    let start = Date()
    try process.run()
    let outReader = PipeReader(out), errReader = PipeReader(err)
    var timedOut = false
    if exited.wait(timeout: .now() + timeout) == .timedOut {
        timedOut = true
        process.terminate()
        if exited.wait(timeout: .now() + 5) == .timedOut {
            kill(process.processIdentifier, SIGKILL)
            _ = exited.wait(timeout: .now() + 5)
        }
    }
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus,
                         stdout: outReader.text(waitingUpTo: 10), stderr: errReader.text(waitingUpTo: 10),
                         timedOut: timedOut, seconds: Date().timeIntervalSince(start))
}

/// The first executable named `name` on PATH.
func findOnPath(_ name: String) -> URL? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    for dir in path.split(separator: ":") {
        let candidate = URL(fileURLWithPath: String(dir)).appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    return nil
}
