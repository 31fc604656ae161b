import Foundation
import MoCo
import MoCoComm
import MoCoTensor
import MoCoLayers
import ArgumentParser

/// Process set-up shared by the subcommands: the communicator, BLAS threads, and error
/// handling that never leaves a peer waiting (an error every rank agreed on is printed once by
/// rank 0; an error on one rank alone aborts the whole job with its message).
enum Runtime {
    static func run(threads: Int?, _ body: (Communicator) throws -> Void) -> Never {
        let comm: Communicator
        do { comm = try Communicators.make() } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8)); exit(1)
        }
        BLAS.threads = threads.flatMap { $0 > 0 ? $0 : nil } ?? defaultThreads()
        var code: Int32 = 0
        do {
            // Every rank sees the same environment (mpirun -x), so they agree on this error.
            if let name = ProcessInfo.processInfo.environment["MOCO_CONV"], ConvAlgorithm(rawValue: name) == nil {
                throw ValidationError("unknown MOCO_CONV '\(name)' (choose "
                                      + ConvAlgorithm.choices + ")")
            }
            try body(comm)
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

    static func report(_ message: String) {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    }

    /// One BLAS thread per core shared among the ranks on this node.
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
