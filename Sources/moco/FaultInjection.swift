import Foundation
import MoCo
import SafeTensors

/// Test hooks read from the environment, for exercising the failure paths of a distributed run
/// (see docs/distributed.md), installed into the trainer as `TrainingHooks`. Unset variables
/// change nothing.
struct FaultInjection: TrainingHooks {
    /// `MOCO_FAIL_AT=R:S`: rank R throws a local (not agreed) error just before global step S
    /// (1-based), so the other ranks are left inside that step's collectives and the job must abort.
    var failAt: (rank: Int, step: Int)?
    /// `MOCO_PERTURB_QUEUE_AT=R:S`: rank R changes one entry of its shared state (the queue, or the
    /// memory bank, or a weight) after global step S, so
    /// `--check-consistency` must catch the divergence.
    var perturbQueueAt: (rank: Int, step: Int)?
    /// `MOCO_STALL_AT=R:S`: rank R stops itself with SIGSTOP just before global step S, as a
    /// hung read or a swapped-out node would; the others must be ended by the watchdog.
    var stallAt: (rank: Int, step: Int)?
    /// `MOCO_CRASH_IN_SAVE=E`: while saving the checkpoint after epoch E, rank 0 writes the first
    /// half of the file to the temporary name `AtomicFile` uses and kills itself with SIGKILL:
    /// the state a crash in the middle of a checkpoint write leaves on disk.
    var crashInSave: Int?

    static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> FaultInjection {
        func parse(_ name: String) throws -> (rank: Int, step: Int)? {
            guard let v = env[name], !v.isEmpty else { return nil }
            let parts = v.split(separator: ":", omittingEmptySubsequences: false).map { Int($0) }
            guard parts.count == 2, let r = parts[0], let s = parts[1], r >= 0, s >= 1 else {
                throw ConfigError("\(name)='\(v)' must be RANK:STEP (rank >= 0, global step >= 1)")
            }
            return (r, s)
        }
        var crash: Int?
        if let v = env["MOCO_CRASH_IN_SAVE"], !v.isEmpty {
            guard let e = Int(v), e >= 1 else { throw ConfigError("MOCO_CRASH_IN_SAVE='\(v)' must be an epoch >= 1") }
            crash = e
        }
        return FaultInjection(failAt: try parse("MOCO_FAIL_AT"), perturbQueueAt: try parse("MOCO_PERTURB_QUEUE_AT"),
                              stallAt: try parse("MOCO_STALL_AT"), crashInSave: crash)
    }

    func beforeStep(_ step: Int, model: ContrastiveMethod) throws {
        if let f = failAt, f.rank == model.comm.rank, f.step == step {
            throw ConfigError("injected failure (MOCO_FAIL_AT) on rank \(model.comm.rank) at step \(step)")
        }
        if let f = stallAt, f.rank == model.comm.rank, f.step == step {
            FileHandle.standardError.write(Data("rank \(f.rank): MOCO_STALL_AT: stopping myself (SIGSTOP) before step \(step) at unix time \(String(format: "%.3f", Date().timeIntervalSince1970))\n".utf8))
            kill(getpid(), SIGSTOP)
        }
    }

    func willWrite(_ w: SafeTensorsWriter, to path: String) throws {
        guard let e = crashInSave, Checkpoint.position(ofFileName: (path as NSString).lastPathComponent) == Checkpoint.Position(epoch: e)
        else { return }
        let bytes = w.serialized()
        let tmp = "\(path).tmp.\(getpid())"
        _ = FileManager.default.createFile(atPath: tmp, contents: Data(bytes[0..<(bytes.count / 2)]))
        FileHandle.standardError.write(Data("MOCO_CRASH_IN_SAVE: killed while writing \(path)\n".utf8))
        kill(getpid(), SIGKILL)
    }

    func afterStep(_ step: Int, model: ContrastiveMethod) {
        if let p = perturbQueueAt, p.rank == model.comm.rank, p.step == step {
            model.perturbSharedState()
        }
    }
}
