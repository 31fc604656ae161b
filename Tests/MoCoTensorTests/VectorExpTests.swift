import XCTest
import Foundation
@testable import MoCoTensor

/// `vectorExp` against Double's exp, in ulps of the Float result.
final class VectorExpTests: XCTestCase {
    func ulps(_ got: Float, _ want: Double) -> Double {
        let w = Float(want)
        return abs(Double(got) - want) / Double(w.ulp)
    }

    /// A dense grid over [-87, 88] and the reduction's edges (r = ±½ln2, integers n) and 0:
    /// at most 2 ulp (measured: see the printed line). A wrong polynomial coefficient or ln2
    /// part gives thousands.
    func testAccuracy() {
        var xs: [Float] = [0, -0, 1, -1, 0.5 * 0.6931472, -0.5 * 0.6931472, 88, -87]
        for i in 0...175_000 { xs.append(-87 + Float(i) * 0.001) }
        for n in -120...120 { xs.append(Float(n) * 0.6931472); xs.append((Float(n) + 0.5) * 0.6931472) }
        var worst = 0.0
        var i = 0
        while i < xs.count {
            var v = SIMD8<Float>()
            for l in 0..<8 { v[l] = xs[min(i + l, xs.count - 1)] }
            let e = vectorExp(v)
            for l in 0..<8 where i + l < xs.count {
                let x = xs[i + l]
                guard x >= -87, x <= 88 else { continue }
                worst = max(worst, ulps(e[l], Foundation.exp(Double(x))))
            }
            i += 8
        }
        print("VectorExpTests: worst \(worst) ulp")
        XCTAssertLessThanOrEqual(worst, 2)
    }

    /// Outside the range: clamped (tiny but positive below, +∞ above), never NaN.
    func testClamping() {
        let e = vectorExp(SIMD8<Float>(-1000, -88, -.infinity, 89, 1000, .infinity, 0, 88.3))
        XCTAssertGreaterThan(e[0], 0); XCTAssertLessThan(e[0], 1e-37)
        XCTAssertLessThan(e[1], 1e-37); XCTAssertLessThan(e[2], 1e-37)
        XCTAssertEqual(e[3], .infinity); XCTAssertEqual(e[4], .infinity); XCTAssertEqual(e[5], .infinity)
        XCTAssertEqual(e[6], 1)
        XCTAssertEqual(Double(e[7]), Foundation.exp(Double(Float(88.3))), accuracy: 2 * Double(e[7].ulp))
    }

    /// expShifted: every element (against exp of the Float difference z − shift, which is what
    /// it exponentiates) and the sum, for lengths around the 8-lane and 64-element blocks.
    func testExpShifted() {
        for count in [1, 7, 8, 9, 63, 64, 65, 130, 4097] {
            let z = (0..<count).map { Float(($0 * 37) % 101) * 0.1 - 5 }
            var out = [Float](repeating: .nan, count: count)
            let s = z.withUnsafeBufferPointer { zp in
                out.withUnsafeMutableBufferPointer { expShifted(zp.baseAddress!, count: count, shift: 2.5, into: $0.baseAddress!) }
            }
            var want = 0.0
            for j in 0..<count {
                let w = Foundation.exp(Double(z[j] - 2.5))
                want += w
                XCTAssertLessThanOrEqual(ulps(out[j], w), 2, "count \(count) j \(j)")
            }
            XCTAssertEqual(s, want, accuracy: 1e-6 * want, "count \(count)")
        }
    }
}
