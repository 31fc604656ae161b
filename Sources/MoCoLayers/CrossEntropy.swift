import Foundation
import MoCoTensor

/// Mean cross-entropy over rows of logits with log-softmax (log-sum-exp with the row maximum
/// subtracted): loss = −(1/N) Σ_n [z[n, t_n] − log Σ_j exp z[n, j]].
/// Gradient: dZ[n, j] = (softmax(z_n)_j − [j = t_n]) / N.
public enum CrossEntropy {
    /// logits: [N, K], targets: [N] -> (mean loss, top-1 accuracy in %); dLogits: [N, K] if given.
    /// Rows are split over `threads` workers; each row's loss term is kept and the terms are
    /// summed in row order afterwards, so the result has the same bits for any count.
    public static func forwardBackward(logits: UnsafePointer<Float>, rows N: Int, classes K: Int,
                                       targets: (Int) -> Int,
                                       dLogits: UnsafeMutablePointer<Float>?, threads: Int = 1) -> (loss: Double, acc1: Double) {
        let invN = 1 / Float(N)
        // Per row: its loss, log Σ_j exp z_j − z_t, and whether its arg max is the target.
        let terms = UnsafeMutablePointer<Double>.allocate(capacity: max(1, N))
        let hits = UnsafeMutablePointer<Bool>.allocate(capacity: max(1, N))
        defer { terms.deallocate(); hits.deallocate() }
        Parallel.forRanges(N, threads: threads, minimum: 16) { r in
            // exp(z − max) of a row: into dLogits' row, or a scratch row.
            let scratch = dLogits == nil ? UnsafeMutablePointer<Float>.allocate(capacity: K) : nil
            defer { scratch?.deallocate() }
            for n in r {
                let z = logits + n * K
                var mx = z[0], arg = 0
                for j in 1..<K where z[j] > mx { mx = z[j]; arg = j }
                let e = dLogits.map { $0 + n * K } ?? scratch!
                let s = expShifted(z, count: K, shift: mx, into: e)
                let t = targets(n)
                terms[n] = Double(mx) + Foundation.log(s) - Double(z[t])
                hits[n] = arg == t
                if dLogits != nil {
                    let scale = Float(1 / s) * invN
                    for j in 0..<K { e[j] *= scale }
                    e[t] -= invN
                }
            }
        }
        var loss = 0.0
        var correct = 0
        for n in 0..<N {
            loss += terms[n]
            if hits[n] { correct += 1 }
        }
        return (loss / Double(N), 100 * Double(correct) / Double(N))
    }
}
