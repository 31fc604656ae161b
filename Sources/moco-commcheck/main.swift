// moco-commcheck: self-checks of every MoCoComm collective, meant to run under mpirun.
//
//   moco-commcheck                 run all checks; rank 0 prints `ok <name>` / `FAIL <name>: detail`
//                                  and `commcheck: N passed, M failed`; exit 1 on any failure
//   moco-commcheck inject-fail NAME R   as above, but rank R reports check NAME as failed
//                                  (tests the failure reporting; exits 1)
//   moco-commcheck fail-rank R     rank R aborts with "injected failure" while the others wait in
//                                  a barrier; the whole job must terminate with a non-zero status
//   moco-commcheck bench [iters] [bytes...]   print the communication bandwidth table
//   moco-commcheck progress US     start the MPI progress thread (every US microseconds), then run
//                                  all checks and those of the thread itself
import Foundation
import MoCoComm
import MoCoBench

func fatal(_ message: String) -> Never {
    FileHandle.standardError.write(Data("moco-commcheck: \(message)\n".utf8))
    exit(2)
}

let arguments = Array(CommandLine.arguments.dropFirst())
let comm: Communicator
do { comm = try Communicators.make(environment: ProcessInfo.processInfo.environment) } catch { fatal("\(error)") }

switch arguments.first {
case nil, "check", "inject-fail", "progress":
    var inject: (name: String, rank: Int)?
    if arguments.first == "inject-fail" {
        guard arguments.count == 3, let r = Int(arguments[2]) else { fatal("usage: moco-commcheck inject-fail NAME R") }
        inject = (arguments[1], r)
    }
    var checks = allreduceChecks + iallreduceChecks + gatherChecks + broadcastChecks
        + agreementChecks + accountingChecks
    if arguments.first == "progress" {
        guard arguments.count == 2, let us = Int(arguments[1]), us > 0 else { fatal("usage: moco-commcheck progress US   (US > 0)") }
        guard let mpi = comm as? MPICommunicator else { fatal("progress needs mpirun (an MPI communicator)") }
        do { try mpi.startProgressThread(intervalMicroseconds: us) } catch { fatal("progress thread: \(error)") }
        checks += progressChecks
    }
    if comm.rank == 0 {
        let kind = (comm as? MPICommunicator).map {
            "MPICommunicator, \($0.threadLevel)" + ($0.progressInterval.map { ", progress thread every \($0) us" } ?? "")
        } ?? "SingleProcessCommunicator"
        print("# commcheck on \(comm.size) rank(s) (\(kind))")
    }
    let (passed, failed) = runChecks(checks, on: comm, inject: inject)
    if comm.rank == 0 { print("commcheck: \(passed) passed, \(failed) failed") }
    Communicators.finalize(comm)
    exit(failed == 0 ? 0 : 1)

case "fail-rank":
    guard arguments.count == 2, let bad = Int(arguments[1]), (0..<comm.size).contains(bad) else {
        fatal("usage: moco-commcheck fail-rank R   (0 <= R < \(comm.size))")
    }
    if comm.rank == bad {
        usleep(200_000)                       // let the others block in the barrier first
        comm.abort("injected failure", code: 3)
    }
    do { try comm.barrier() } catch { fatal("barrier: \(error)") }
    // Unreachable under MPI: MPI_Abort on the failing rank terminates the whole job.
    fatal("rank \(comm.rank): left the barrier although rank \(bad) aborted")

case "bench":
    let iterations = arguments.count > 1 ? Int(arguments[1]) ?? 20 : 20
    let sizes = arguments.count > 2 ? arguments.dropFirst(2).compactMap { Int($0) } : [4 << 10, 64 << 10, 1 << 20, 4 << 20]
    do {
        let rows = try runCommBench(comm: comm, sizes: sizes, iterations: iterations)
        if comm.rank == 0 { print(formatCommBench(rows)) }
    } catch { comm.abort("bench failed: \(error)", code: 1) }
    Communicators.finalize(comm)

default:
    fatal("unknown mode \(arguments[0]); expected check, inject-fail NAME R, fail-rank R, progress US or bench [iterations] [bytes...]")
}
