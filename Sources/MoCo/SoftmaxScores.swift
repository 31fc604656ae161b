import Foundation

/// How the temperature T shapes InfoNCE's softmax (He et al. 2020 eq. 1; Wu et al. 2018 sec.
/// 3.1, where T "controls the concentration level of the distribution"): for queries with
/// cosines s₊ to their positive and s_j to K negatives, the scores
///   p₊ = exp(s₊/T) / Z,  p_j = exp(s_j/T) / Z,  Z = exp(s₊/T) + Σ_j exp(s_j/T).
/// A large T makes every p_j close to 1/(K + 1) (all negatives weigh alike); a small T puts the
/// mass, and the gradient (∂L/∂s_j = p_j / T), on the few hardest negatives.
public struct SoftmaxScores {
    /// log10 bins of a score: [lo, hi) with `binsPerDecade` bins per decade from 10^minLog10 to 1.
    public struct Histogram: Sendable {
        public let minLog10: Double, binsPerDecade: Int
        public private(set) var counts: [Int]
        public init(minLog10: Double = -12, binsPerDecade: Int = 4) {
            self.minLog10 = minLog10; self.binsPerDecade = binsPerDecade
            counts = .init(repeating: 0, count: Int(-minLog10) * binsPerDecade)
        }
        /// Adds p (scores below 10^minLog10 count in the first bin, 1 in the last).
        public mutating func add(_ p: Double) {
            let b = Int(((max(log10(max(p, 1e-300)), minLog10) - minLog10) * Double(binsPerDecade)).rounded(.down))
            counts[min(max(b, 0), counts.count - 1)] += 1
        }
        public func edges(_ b: Int) -> (lo: Double, hi: Double) {
            (pow(10, minLog10 + Double(b) / Double(binsPerDecade)), pow(10, minLog10 + Double(b + 1) / Double(binsPerDecade)))
        }
    }

    /// What one temperature does to the scores of all queries.
    public struct Summary: Sendable {
        public var t: Double
        public var positive = Histogram(), negative = Histogram()
        /// Mean p₊ over the queries (1 − InfoNCE's error mass), and the mean of log p₊ (−loss).
        public var meanPositive = 0.0, meanLogPositive = 0.0
        /// Mean over queries of the largest negative's score.
        public var meanTopNegative = 0.0
        /// Mean over queries of exp(H) of the negatives' renormalised scores: the number of
        /// negatives that effectively share the gradient (K when all weigh alike, 1 when one does).
        public var effectiveNegatives = 0.0
        /// Mean share of the negatives' mass held by their top 1%.
        public var topPercentShare = 0.0
        public var queries = 0
    }

    /// positive: [n] cosines, negatives: [n, K] cosines -> one summary per temperature.
    public static func summarize(positive: [Float], negatives: [Float], k K: Int, temperatures: [Double]) -> [Summary] {
        let n = positive.count
        precondition(K > 0 && negatives.count == n * K)
        let top = max(1, K / 100)
        return temperatures.map { t in
            var s = Summary(t: t)
            var e = [Double](repeating: 0, count: K)
            for i in 0..<n {
                let row = negatives[(i * K)..<((i + 1) * K)]
                let pos = Double(positive[i]) / t
                let mx = max(pos, Double(row.max()!) / t)
                var z = exp(pos - mx), neg = 0.0
                for (j, v) in row.enumerated() { e[j] = exp(Double(v) / t - mx); neg += e[j] }
                z += neg
                let pPos = exp(pos - mx) / z
                s.positive.add(pPos)
                s.meanPositive += pPos
                s.meanLogPositive += (pos - mx) - log(z)
                var h = 0.0, best = 0.0
                for j in 0..<K {
                    s.negative.add(e[j] / z)
                    best = max(best, e[j])
                    let q = e[j] / neg
                    if q > 0 { h -= q * log(q) }
                }
                s.meanTopNegative += best / z
                s.effectiveNegatives += exp(h)
                s.topPercentShare += e.sorted(by: >).prefix(top).reduce(0, +) / neg
            }
            let dn = Double(max(n, 1))
            s.meanPositive /= dn; s.meanLogPositive /= dn; s.meanTopNegative /= dn
            s.effectiveNegatives /= dn; s.topPercentShare /= dn; s.queries = n
            return s
        }
    }

    /// Rows `t,kind,bin_lo,bin_hi,count` (kind positive or negative), for plotting.
    public static func histogramCSV(_ summaries: [Summary]) -> String {
        var out = "t,kind,bin_lo,bin_hi,count\n"
        for s in summaries {
            for (kind, h) in [("positive", s.positive), ("negative", s.negative)] {
                for b in 0..<h.counts.count {
                    let (lo, hi) = h.edges(b)
                    out += "\(s.t),\(kind),\(lo),\(hi),\(h.counts[b])\n"
                }
            }
        }
        return out
    }

    /// One row per temperature: `t,queries,mean_p_pos,mean_log_p_pos,mean_top_neg,effective_negatives,top1pct_share`.
    public static func summaryCSV(_ summaries: [Summary], k: Int) -> String {
        var out = "t,queries,k,mean_p_pos,mean_log_p_pos,mean_top_neg,effective_negatives,top1pct_share\n"
        for s in summaries {
            out += "\(s.t),\(s.queries),\(k),\(s.meanPositive),\(s.meanLogPositive),\(s.meanTopNegative),\(s.effectiveNegatives),\(s.topPercentShare)\n"
        }
        return out
    }
}
