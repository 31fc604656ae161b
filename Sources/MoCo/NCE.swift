import Foundation
import MoCoTensor

/// Noise-contrastive estimation as Instance Discrimination uses it (Wu et al. 2018, sec. 3.2,
/// eq. 3-7), over rows of logits s_ij = v_j·f_i / T whose column 0 is the positive and columns
/// 1...K are K samples of the noise distribution P_n = 1/N (uniform over the N training images):
///
///   P(j|f) = exp(s_ij) / Z,     h(j, f) = P(j|f) / (P(j|f) + K·P_n)
///   L = −(1/n) Σ_i [ log h(0, f_i) + Σ_{j≥1} log(1 − h(j, f_i)) ]
///
/// Z = N · mean(exp(s)) over the logits of the first batch (Monte Carlo estimate of
/// Σ_j exp(v_j·f/T), eq. 5), then fixed. Gradients with respect to the logits:
///   ∂L/∂s_i0 = −K·P_n / (P_i0 + K·P_n) / n,   ∂L/∂s_ij = P_ij / (P_ij + K·P_n) / n  (j ≥ 1).
public final class NCE {
    /// N, the number of training images (the noise distribution is 1/N).
    public let dataCount: Int
    /// Z, once estimated (nil before the first batch). Kept in Float so that a checkpoint holds
    /// it exactly.
    public var z: Float?

    public init(dataCount: Int) {
        precondition(dataCount > 0)
        self.dataCount = dataCount
    }

    /// logits: [n, 1 + K] -> (Σ exp(s), number of terms), this rank's part of Z's estimate.
    public func partialZ(logits: UnsafePointer<Float>, rows n: Int, columns: Int) -> (sum: Double, count: Double) {
        var s = 0.0
        for i in 0..<(n * columns) { s += Foundation.exp(Double(logits[i])) }
        return (s, Double(n * columns))
    }

    /// Z = N · (Σ exp(s) / count), from the sums over every rank's first batch.
    public func setZ(sum: Double, count: Double) {
        z = Float(Double(dataCount) * sum / count)
    }

    /// logits: [n, 1 + K] -> (mean loss, % of rows whose positive logit is the largest);
    /// dLogits: [n, 1 + K]. `z` must be set.
    public func forwardBackward(logits: UnsafePointer<Float>, rows n: Int, columns: Int,
                                dLogits: UnsafeMutablePointer<Float>) -> (loss: Double, acc1: Double) {
        guard let zf = z else { preconditionFailure("NCE before Z was estimated") }
        let K = columns - 1
        let kPn = Double(K) / Double(dataCount)
        let invZ = 1 / Double(zf), invN = 1 / Double(n)
        var loss = 0.0
        var correct = 0
        for i in 0..<n {
            let s = logits + i * columns, d = dLogits + i * columns
            var top = true   // the positive is the arg-max (ties to the first, as `CrossEntropy`)
            for j in 1..<columns where s[j] > s[0] { top = false; break }
            if top { correct += 1 }
            for j in 0..<columns {
                let p = Foundation.exp(Double(s[j])) * invZ
                let denom = p + kPn
                if j == 0 {
                    loss -= Foundation.log(p / denom)
                    d[j] = Float(-kPn / denom * invN)
                } else {
                    loss -= Foundation.log(kPn / denom)
                    d[j] = Float(p / denom * invN)
                }
            }
        }
        return (loss * invN, 100 * Double(correct) / Double(n))
    }
}
