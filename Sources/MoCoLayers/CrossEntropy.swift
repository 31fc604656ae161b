import Foundation
import MoCoTensor

/// Mean cross-entropy over rows of logits with log-softmax (log-sum-exp with the row maximum
/// subtracted): loss = −(1/N) Σ_n [z[n, t_n] − log Σ_j exp z[n, j]].
/// Gradient: dZ[n, j] = (softmax(z_n)_j − [j = t_n]) / N.
public enum CrossEntropy {
    /// logits: [N, K], targets: [N] -> (mean loss, top-1 accuracy in %); dLogits: [N, K] if given.
    public static func forwardBackward(logits: UnsafePointer<Float>, rows N: Int, classes K: Int,
                                       targets: (Int) -> Int,
                                       dLogits: UnsafeMutablePointer<Float>?) -> (loss: Double, acc1: Double) {
        var loss = 0.0
        var correct = 0
        let invN = 1 / Float(N)
        // exp(z − max) of a row: into dLogits' row, or a scratch row.
        let scratch = dLogits == nil ? UnsafeMutablePointer<Float>.allocate(capacity: K) : nil
        defer { scratch?.deallocate() }
        for n in 0..<N {
            let z = logits + n * K
            var mx = z[0], arg = 0
            for j in 1..<K where z[j] > mx { mx = z[j]; arg = j }
            let e = dLogits.map { $0 + n * K } ?? scratch!
            let s = expShifted(z, count: K, shift: mx, into: e)
            let t = targets(n)
            loss += Double(mx) + Foundation.log(s) - Double(z[t])
            if arg == t { correct += 1 }
            if dLogits != nil {
                let scale = Float(1 / s) * invN
                for j in 0..<K { e[j] *= scale }
                e[t] -= invN
            }
        }
        return (loss / Double(N), 100 * Double(correct) / Double(N))
    }
}
