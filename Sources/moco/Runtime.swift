import Foundation
import MoCo
import MoCoComm
import MoCoTensor
import MoCoLayers
import ArgumentParser

/// Process set-up shared by the subcommands: the communicator, the engine settings, and error
/// handling that never leaves a peer waiting (an error every rank agreed on is printed once by
/// rank 0; an error on one rank alone aborts the whole job with its message).
enum Runtime {
    static func run(_ body: (Communicator) throws -> Void) -> Never {
        let comm: Communicator
        do { comm = try Communicators.make(environment: ProcessInfo.processInfo.environment) } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8)); exit(1)
        }
        // The engine splits work over its own workers (EngineConfig.threads); OpenBLAS runs on one.
        BLAS.useEngineThreads()
        if comm.rank == 0 { BLASCoreSelection.report(environment: ProcessInfo.processInfo.environment) }
        var code: Int32 = 0
        do {
            try body(comm)
        } catch let e as TrainingPreempted {
            // Every rank stopped at the same step and the checkpoint is saved (agreed).
            if comm.rank == 0 { FileHandle.standardError.write(Data("moco: \(e)\n".utf8)) }
            code = TrainingPreempted.exitCode
        } catch let e as CommError {
            if case .peerFailed(let rank, let message) = e.kind {
                if comm.rank == 0 { report(comm.size > 1 ? "rank \(rank): \(message)" : message) }
            } else if comm.size > 1 {
                comm.abort("error: \(e)", code: 1)
            } else { report("\(e)") }
            code = 1
        } catch {
            if comm.size > 1 { comm.abort("error: \(error)", code: 1) }
            report("\(error)")
            code = 1
        }
        (comm as? MPICommunicator)?.finalize()
        exit(code)
    }

    /// Gives `comm` a watchdog of `timeout` seconds (`--collective-timeout`) and starts its
    /// backstop thread, which ends the job through MPI_Abort (or exits, on one process).
    static func installWatchdog(_ comm: Communicator, timeout: Double) {
        let rank = comm.rank, size = comm.size
        nonisolated(unsafe) let target = comm
        let w = Watchdog(timeout: timeout) { message in
            // If MPI_Abort cannot run (the main thread holds MPI), exit anyway after 10 s: the
            // launcher then ends the peers of a rank that exited without MPI_Finalize.
            Thread.detachNewThread { Thread.sleep(forTimeInterval: 10); _exit(MPICommunicator.timeoutExitCode) }
            if size > 1 { target.abort(message, code: MPICommunicator.timeoutExitCode) }
            FileHandle.standardError.write(Data("rank \(rank): \(message)\n".utf8))
            _exit(MPICommunicator.timeoutExitCode)
        }
        comm.watchdog = w
        w.start()
    }

    /// `--progress-thread` must not be negative.
    static func validateProgressThread(_ microseconds: Int) throws {
        guard microseconds >= 0 else {
            throw ValidationError("--progress-thread must be >= 0 microseconds (0 = off), got \(microseconds)")
        }
    }

    /// `--progress-thread US` of `moco train` and `moco bench step`.
    static let progressThreadHelp = ArgumentHelp("Under mpirun, drive MPI progress from a background thread every US microseconds while gradient allreduces are pending, so they move during the backward pass (Open MPI progresses them only inside MPI calls; docs/performance.md, \"The model on shaped links\"). 0 = off.", valueName: "us")

    /// Starts the MPI progress thread (`--progress-thread US`; 0 = off; negative: an error). On
    /// one process there is nothing to progress and nothing starts. Call it inside
    /// `comm.agreeing`, so every rank stops on a bad value together.
    static func startProgressThread(_ comm: Communicator, microseconds: Int) throws {
        try validateProgressThread(microseconds)
        guard microseconds > 0, let mpi = comm as? MPICommunicator, mpi.size > 1 else { return }
        try mpi.startProgressThread(intervalMicroseconds: microseconds)
    }

    static func report(_ message: String) {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    }

    /// The engine settings of a command: `--threads` (default: the node's cores shared among
    /// its ranks), `--conv` (default: `MOCO_CONV`, else winograd4), `--conv-dw` (default:
    /// `MOCO_CONV_DW`, else winograd), `--conv-strided` (default: `MOCO_CONV_STRIDED`, else
    /// direct), and the chunk budgets
    /// `MOCO_IM2COL_CHUNK` and `MOCO_WINOGRAD_CHUNK` (floats). The environment is read here and
    /// nowhere in the libraries; every rank sees the same (mpirun -x), so all agree on an error.
    static func engine(threads: Int?, conv: ConvAlgorithm?, weightGrad: WeightGradAlgorithm? = nil,
                       strided: StridedConvAlgorithm? = nil) throws -> EngineConfig {
        let env = ProcessInfo.processInfo.environment
        var e = EngineConfig(threads: threads.flatMap { $0 > 0 ? $0 : nil } ?? defaultThreads())
        // The flag, else the environment variable (a misspelt value is an error), else the default.
        func choice<A: RawRepresentable & CaseIterable>(_ flag: A?, _ name: String) throws -> A? where A.RawValue == String {
            if let flag { return flag }
            guard let value = env[name] else { return nil }
            guard let a = A(rawValue: value) else {
                let choices = A.allCases.map(\.rawValue).joined(separator: ", ")
                throw ValidationError("unknown \(name) '\(value)' (choose \(choices))")
            }
            return a
        }
        if let a = try choice(conv, "MOCO_CONV") { e.conv = a }
        if let a = try choice(weightGrad, "MOCO_CONV_DW") { e.weightGrad = a }
        if let a = try choice(strided, "MOCO_CONV_STRIDED") { e.strided = a }
        func floats(_ name: String) throws -> Int? {
            guard let v = env[name] else { return nil }
            guard let n = Int(v), n > 0 else { throw ValidationError("\(name)='\(v)' must be a positive number of floats") }
            return n
        }
        if let n = try floats("MOCO_IM2COL_CHUNK") { e.im2colChunkFloats = n }
        if let n = try floats("MOCO_WINOGRAD_CHUNK") { e.winogradChunkFloats = n }
        return e
    }

    /// One engine thread per core shared among the ranks on this node.
    static func defaultThreads() -> Int {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let env = ProcessInfo.processInfo.environment
        let local = env["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init) ?? env["MPI_LOCALNRANKS"].flatMap(Int.init) ?? 1
        return max(1, cores / max(local, 1))
    }
}

/// Prints on rank 0 only, unbuffered (mpirun pipes stdout; progress must show as it happens).
func say(_ comm: Communicator, _ s: String) { if comm.rank == 0 { emit(s) } }
func emit(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }
