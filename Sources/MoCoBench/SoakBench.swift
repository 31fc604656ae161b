import Foundation
import MoCo
import MoCoTensor
import MoCoComm
import SafeTensors

/// `moco bench soak`: trains for thousands of steps through the real `Trainer` (loader,
/// method, logging, checkpoints) and samples the resident set every `every` steps, to show that
/// memory is flat after warm-up (a leak of a few KB per step shows as a slope).
public final class SoakProbe: TrainingHooks {
    public struct Sample: Sendable { public let step: Int, seconds: Double, rssMB: Double }
    public let every: Int
    public private(set) var samples: [Sample] = []
    let clock = Stopwatch()
    let report: (Sample) -> Void

    public init(every: Int, report: @escaping (Sample) -> Void) { self.every = every; self.report = report }

    public func beforeStep(_ step: Int, model: ContrastiveMethod) throws {}
    public func afterStep(_ step: Int, model: ContrastiveMethod) {
        guard step % every == 0 else { return }
        let s = Sample(step: step, seconds: clock.elapsed, rssMB: Double(residentBytes()) / 1048576)
        samples.append(s)
        report(s)
    }
    public func willWrite(_ w: SafeTensorsWriter, to path: String) throws {}

    public struct Summary: Sendable {
        /// RSS at the first sample at or after warm-up, at the end, and the highest sample after warm-up.
        public let warmRSS: Double, finalRSS: Double, maxRSS: Double
        /// Least-squares slope of RSS over the steps after warm-up, in MB per 1000 steps.
        public let driftPerThousandSteps: Double
        public let samplesUsed: Int
    }

    /// The drift after `warmup` steps (nil with fewer than 2 samples there).
    public func summary(warmup: Int) -> Summary? {
        let s = samples.filter { $0.step >= warmup }
        guard s.count >= 2 else { return nil }
        let n = Double(s.count)
        let mx = s.map { Double($0.step) }.reduce(0, +) / n, my = s.map(\.rssMB).reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0
        for p in s { let dx = Double(p.step) - mx; sxy += dx * (p.rssMB - my); sxx += dx * dx }
        return Summary(warmRSS: s.first!.rssMB, finalRSS: s.last!.rssMB, maxRSS: s.map(\.rssMB).max()!,
                       driftPerThousandSteps: sxx > 0 ? 1000 * sxy / sxx : 0, samplesUsed: s.count)
    }
}
