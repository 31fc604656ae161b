import ArgumentParser
import Foundation
import MoCo
import MoCoComm
import MoCoLayers
import SafeTensors

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay a recorded training trajectory (scripts/pytorch_trajectory.py export) step by step and compare it with the recording.",
        discussion: """
            The recording holds the initial encoders and queue, every step's augmented crops, shuffle-BN \
            permutation and learning rate, and its own per-step loss, top-1 and final weights in float32 and \
            float64. The replay passes when its distance from the float64 run stays within a factor of the \
            recording's noise envelope (its float32 run and its float64 replays from perturbed initial \
            weights; `pytorch_trajectory.py envelope` adds one to an older file, which is otherwise judged \
            by its single float32 run) (docs/training.md, "Parity with PyTorch"). --perturb multiplies the \
            initial weights by (1 + EPS * N(0,1)) first: this implementation's own sensitivity, to set \
            beside the envelope.
            """)

    @Option(help: "The trajectory file.") var trajectory: String
    @Option(help: "3x3 stride-1 convolutions (default: MOCO_CONV, else winograd4).") var conv: ConvAlgorithm?
    @Option(name: .customLong("conv-dw"), help: "Weight gradient of the Winograd convolutions (default: MOCO_CONV_DW, else winograd).") var convDW: WeightGradAlgorithm?
    @Option(name: .customLong("conv-strided"), help: "Forward of the strided 3x3 convolutions: direct (AVX2 kernel, no im2col columns) or im2col (default: MOCO_CONV_STRIDED, else direct).") var convStrided: StridedConvAlgorithm?
    @Option(help: "Engine threads per rank.") var threads: Int?
    @Option(help: "Print every N steps.") var every = 10
    @Flag(help: "Print one JSON line with every step and the verdict.") var json = false
    @Option(help: "Perturb the initial weights by a relative EPS (e.g. 5.96e-8, one float32 rounding) before replaying.")
    var perturb: Double?
    @Option(help: "Seed of --perturb's Gaussian draws.") var perturbSeed: UInt64 = 1

    func validate() throws {
        if let e = perturb, !(e > 0 && e < 1) { throw ValidationError("--perturb must be in (0, 1), got \(e)") }
    }

    func run() throws {
        Runtime.run { comm in
            let engine = try Runtime.engine(threads: threads, conv: conv, weightGrad: convDW, strided: convStrided)
            let f = try comm.agreeing { try SafeTensorsFile(path: trajectory) }
            if !json {
                say(comm, "step   loss (this)   loss (ref f32)  loss (ref f64)  |this-f64|  |f32-f64|  envelope   top-1 this/ref")
            }
            let p = perturb.map { TrajectoryReplay.Perturbation(eps: $0, seed: perturbSeed) }
            let r = try TrajectoryReplay.run(f, engine: engine, comm: comm, perturbation: p, progress: { s, st in
                guard !json, s % max(every, 1) == 0 || s == 1 else { return }
                let env = st.lossEnvelope.map { String(format: "%8.2e", $0) } ?? "       -"
                say(comm, String(format: "%4d  %12.6f  %14.6f  %14.6f  %10.2e  %10.2e  %@   %5.1f / %5.1f", s, st.loss, st.refLoss, st.refLoss64,
                                 abs(st.loss - st.refLoss64), abs(st.refLoss - st.refLoss64), env, st.acc1, st.refAcc1))
            })
            let verdict = TrajectoryReplay.Verdict(r)
            if json {
                var obj: [String: Any] = [
                    "loss": r.steps.map(\.loss), "acc1": r.steps.map(\.acc1), "ref_loss": r.steps.map(\.refLoss),
                    "ref_loss_f64": r.steps.map(\.refLoss64), "final_vs_ref": r.finalVsRef, "final_vs_f64": r.finalVsF64,
                    "ref_vs_f64": r.refVsF64, "queue_vs_ref": r.queueVsRef, "bn_running_stats_vs_ref": r.buffersVsRef, "conv": engine.conv.rawValue, "conv_dw": engine.weightGrad.rawValue, "conv_strided": engine.strided.rawValue,
                    "pass": verdict.failures.isEmpty, "factor": verdict.factor, "used_envelope": verdict.usedEnvelope,
                ]
                obj["failures"] = verdict.failures
                if verdict.usedEnvelope {
                    obj["loss_envelope"] = r.steps.map { $0.lossEnvelope! }
                    obj["final_envelope"] = r.finalEnvelope!
                }
                if let p { obj["perturb"] = ["eps": p.eps, "seed": p.seed] }
                let d = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
                say(comm, String(decoding: d, as: UTF8.self))
            } else {
                say(comm, String(format: "final encoder_q: relative L2 vs ref f32 %.2e, vs ref f64 %.2e (ref f32 vs f64 %.2e); queue %.2e of max; pointer %@; BN running statistics %.2e vs ref f32",
                                 r.finalVsRef, r.finalVsF64, r.refVsF64, r.queueVsRef, r.queuePointerMatches ? "equal" : "DIFFERS", r.buffersVsRef))
                say(comm, verdict.summary)
            }
            if !verdict.failures.isEmpty { throw ValidationError("trajectory does not match: " + verdict.failures.joined(separator: "; ")) }
        }
    }
}
