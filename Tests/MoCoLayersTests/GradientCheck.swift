import XCTest
import MoCoTensor
@testable import MoCoLayers

/// Central finite differences: ∂L/∂θ_i ≈ (L(θ_i + h) − L(θ_i − h)) / 2h, with L accumulated in
/// Double as L = Σ_j r_j · y_j for a fixed random r (so dY = r).
///
/// Tolerance: forward values are float32 (relative rounding ~6e-8 per operation, a few hundred
/// operations deep), so L carries an absolute error of about 1e-6·Σ|r_j y_j|; divided by 2h
/// with h = 1e-2 that is ~1e-4·|L|/|θ-scale|. The test therefore accepts
/// |numeric − analytic| ≤ 2e-2 · max_i |analytic_i| + 2e-3, i.e. about 2% of the tensor's largest
/// gradient, which still catches any wrong term (a wrong sign, factor or index moves entries by
/// O(100%)).
struct GradCheck {
    var h: Float = 1e-2
    var relTol: Double = 2e-2
    var absTol: Double = 2e-3
    var samples = 24

    /// Checks `analytic` (the gradient of `loss` with respect to the `count` values at `p`)
    /// at up to `samples` indices chosen by `rng`.
    func check(_ what: String, p: UnsafeMutablePointer<Float>, count: Int, analytic: [Float],
               loss: () -> Double, rng: inout Xoshiro, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(analytic.count, count, what, file: file, line: line)
        let scale = analytic.map { Double(abs($0)) }.max() ?? 0
        XCTAssertTrue(scale.isFinite, "\(what): non-finite gradient", file: file, line: line)
        let idx = count <= samples ? Array(0..<count) : (0..<samples).map { _ in rng.below(count) }
        var worst = 0.0
        for i in idx {
            let old = p[i]
            p[i] = old + h; let lp = loss()
            p[i] = old - h; let lm = loss()
            p[i] = old
            let num = (lp - lm) / Double(2 * h)
            let err = abs(num - Double(analytic[i]))
            worst = max(worst, err)
            XCTAssertLessThanOrEqual(err, relTol * scale + absTol,
                                     "\(what)[\(i)]: numeric \(num) vs analytic \(analytic[i]) (max |g| \(scale))",
                                     file: file, line: line)
        }
        XCTAssertGreaterThan(scale, 0, "\(what): gradient is all zero, the check would be vacuous", file: file, line: line)
    }
}

func randomBuffer(_ n: Int, _ rng: inout Xoshiro, scale: Float = 1) -> FloatBuffer {
    let b = FloatBuffer(count: n)
    for i in 0..<n { b.ptr[i] = rng.normal() * scale }
    return b
}

/// L = Σ r_j y_j in Double.
func dot(_ r: FloatBuffer, _ y: UnsafePointer<Float>) -> Double {
    var s = 0.0
    for i in 0..<r.count { s += Double(r.ptr[i]) * Double(y[i]) }
    return s
}

func array(_ p: UnsafePointer<Float>, _ n: Int) -> [Float] { Array(UnsafeBufferPointer(start: p, count: n)) }
