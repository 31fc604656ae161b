import Foundation

/// Learning-rate schedules, evaluated per step from the fractional epoch so that a resumed run
/// follows the same curve.
public enum LRSchedule: Equatable, Sendable, Codable {
    /// lr · 0.1^(number of milestones ≤ epoch) (MoCo v1: milestones 120, 160 of 200).
    case step(milestones: [Int])
    /// Cosine annealing from lr to 0 over the run (SGDR, Loshchilov and Hutter 2017; MoCo v2):
    /// lr · ½(1 + cos(π · t / T)).
    case cosine

    /// Learning rate at fractional epoch `t` (0 ≤ t ≤ total) with linear warm-up over
    /// `warmupEpochs` (Goyal et al. 2017): lr · t / warmup while t < warmup.
    public func lr(base: Double, epoch t: Double, totalEpochs: Int, warmupEpochs: Double = 0) -> Double {
        var lr: Double
        switch self {
        case .step(let milestones):
            lr = base * pow(0.1, Double(milestones.filter { Double($0) <= t }.count))
        case .cosine:
            lr = base * 0.5 * (1 + cos(Double.pi * min(t, Double(totalEpochs)) / Double(max(totalEpochs, 1))))
        }
        if warmupEpochs > 0 && t < warmupEpochs { lr *= t / warmupEpochs }
        return lr
    }
}
