import Foundation
import MoCo

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

    static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> FaultInjection {
        func parse(_ name: String) throws -> (rank: Int, step: Int)? {
            guard let v = env[name], !v.isEmpty else { return nil }
            let parts = v.split(separator: ":", omittingEmptySubsequences: false).map { Int($0) }
            guard parts.count == 2, let r = parts[0], let s = parts[1], r >= 0, s >= 1 else {
                throw ConfigError("\(name)='\(v)' must be RANK:STEP (rank >= 0, global step >= 1)")
            }
            return (r, s)
        }
        return FaultInjection(failAt: try parse("MOCO_FAIL_AT"), perturbQueueAt: try parse("MOCO_PERTURB_QUEUE_AT"))
    }

    func beforeStep(_ step: Int, model: ContrastiveMethod) throws {
        if let f = failAt, f.rank == model.comm.rank, f.step == step {
            throw ConfigError("injected failure (MOCO_FAIL_AT) on rank \(model.comm.rank) at step \(step)")
        }
    }

    func afterStep(_ step: Int, model: ContrastiveMethod) {
        if let p = perturbQueueAt, p.rank == model.comm.rank, p.step == step {
            model.perturbSharedState()
        }
    }
}
