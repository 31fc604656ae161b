import Foundation

/// Output and status of a child process run with a deadline.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var timedOut: Bool
    public var seconds: Double
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
public func runProcess(_ executable: URL, _ arguments: [String], environment: [String: String] = ProcessInfo.processInfo.environment,
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
public func findOnPath(_ name: String) -> URL? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    for dir in path.split(separator: ":") {
        let candidate = URL(fileURLWithPath: String(dir)).appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    return nil
}

/// An executable built with this test bundle (`moco`, `moco-commcheck`): next to the bundle
/// first, then `.build/{debug,release}` found by walking up from the calling source file.
/// The environment variable `MOCO_BIN_DIR` overrides the directory.
public func builtExecutable(_ name: String, file: String = #filePath) -> URL? {
    let fm = FileManager.default
    var candidates: [URL] = []
    if let dir = ProcessInfo.processInfo.environment["MOCO_BIN_DIR"] {
        candidates.append(URL(fileURLWithPath: dir).appendingPathComponent(name))
    }
    let bundle = Bundle.main.bundleURL
    candidates += [bundle.appendingPathComponent(name), bundle.deletingLastPathComponent().appendingPathComponent(name)]
    var dir = URL(fileURLWithPath: file).deletingLastPathComponent()
    while dir.path != "/" {
        let build = dir.appendingPathComponent(".build")
        if fm.fileExists(atPath: build.path) {
            candidates += ["debug", "release"].map { build.appendingPathComponent($0).appendingPathComponent(name) }
            break
        }
        dir.deleteLastPathComponent()
    }
    return candidates.first { fm.isExecutableFile(atPath: $0.path) }
}

/// The environment for mpirun: fast start-up (ob1), root allowed (containers run as root), and
/// none of the variables of an enclosing MPI job.
public var mpiEnvironment: [String: String] {
    var env = ProcessInfo.processInfo.environment
    for key in ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"] { env[key] = nil }
    env["OMPI_MCA_pml"] = "ob1"
    env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    return env
}
