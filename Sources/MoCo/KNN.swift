import Foundation
import MoCoTensor

/// Weighted k-nearest-neighbour classification on unit features (Wu et al. 2018, InstDisc,
/// sec. 3.4; the MoCo CIFAR demo's monitor): the k most cosine-similar bank features vote for
/// their labels with weight exp(s / t); the class with the largest total wins.
public enum KNN {
    /// bank: [Nb, d], test: [Nt, d] -> number of test rows whose prediction equals their label.
    public static func correct(bank: UnsafePointer<Float>, bankLabels: [Int32], bankCount nb: Int,
                               test: UnsafePointer<Float>, testLabels: [Int32], testCount nt: Int,
                               dim d: Int, classes: Int, k: Int = 200, t: Float = 0.1, threads: Int = 1) -> Int {
        let kk = min(k, nb)
        if nt == 0 || kk == 0 { return 0 }
        let chunk = max(1, min(nt, (8 << 20) / max(nb, 1)))
        let sims = FloatBuffer(count: chunk * nb)
        var heapS = [Float](repeating: 0, count: kk), heapI = [Int32](repeating: 0, count: kk)
        var votes = [Double](repeating: 0, count: classes)
        var correct = 0
        var r0 = 0
        while r0 < nt {
            let rows = min(chunk, nt - r0)
            // sims[rows, Nb] = test[r0..., d] @ bank^T
            BLAS.sgemm(transB: true, m: rows, n: nb, k: d, a: test + r0 * d, lda: d, b: bank, ldb: d, c: sims.ptr, ldc: nb, threads: threads)
            for r in 0..<rows {
                let s = sims.ptr + r * nb
                topK(s, nb, kk, &heapS, &heapI)
                for c in 0..<classes { votes[c] = 0 }
                for j in 0..<kk { votes[Int(bankLabels[Int(heapI[j])])] += Foundation.exp(Double(heapS[j] / t)) }
                var best = 0
                for c in 1..<classes where votes[c] > votes[best] { best = c }
                if Int32(best) == testLabels[r0 + r] { correct += 1 }
            }
            r0 += rows
        }
        return correct
    }

    /// The k largest of s[0..<n] (values and indices, unordered) with a binary min-heap.
    static func topK(_ s: UnsafePointer<Float>, _ n: Int, _ k: Int, _ hs: inout [Float], _ hi: inout [Int32]) {
        hs.withUnsafeMutableBufferPointer { hs in
            hi.withUnsafeMutableBufferPointer { hi in
                for j in 0..<k { hs[j] = s[j]; hi[j] = Int32(j) }
                for j in stride(from: k / 2 - 1, through: 0, by: -1) { siftDown(hs, hi, j, k) }
                var i = k
                while i < n {
                    if s[i] > hs[0] { hs[0] = s[i]; hi[0] = Int32(i); siftDown(hs, hi, 0, k) }
                    i += 1
                }
            }
        }
    }

    @inline(__always)
    static func siftDown(_ hs: UnsafeMutableBufferPointer<Float>, _ hi: UnsafeMutableBufferPointer<Int32>, _ start: Int, _ k: Int) {
        var p = start
        while true {
            let l = 2 * p + 1
            if l >= k { return }
            var m = l
            if l + 1 < k && hs[l + 1] < hs[l] { m = l + 1 }
            if hs[m] >= hs[p] { return }
            hs.swapAt(p, m); hi.swapAt(p, m)
            p = m
        }
    }
}
