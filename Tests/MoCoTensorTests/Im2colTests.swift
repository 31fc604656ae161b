import XCTest
@testable import MoCoTensor

/// im2col and col2im against direct index arithmetic.
final class Im2colTests: XCTestCase {
    /// The geometries exercised: 'same' stride 1 (the shifted-block fast path) with 3x3, 5x5,
    /// maps smaller than the kernel, 1x1; the general path (1x1 stride 2, a valid 3x3); and the
    /// column-phase path of strides > 1 with k > 1 (ResNet's 28x28 3x3 stride 2, rows of 8-float
    /// copies with and without a tail, stride 3 with a 5x5 kernel, a 1-pixel-wide map, no padding).
    let geometries: [ConvGeometry] = [
        ConvGeometry(channels: 2, height: 5, width: 4, kernel: 3, stride: 1, padding: 1),
        ConvGeometry(channels: 3, height: 7, width: 7, kernel: 3, stride: 1, padding: 1),
        ConvGeometry(channels: 1, height: 6, width: 6, kernel: 5, stride: 1, padding: 2),
        ConvGeometry(channels: 2, height: 2, width: 3, kernel: 5, stride: 1, padding: 2),
        ConvGeometry(channels: 2, height: 1, width: 1, kernel: 3, stride: 1, padding: 1),
        ConvGeometry(channels: 3, height: 4, width: 5, kernel: 1, stride: 1, padding: 0),
        ConvGeometry(channels: 2, height: 7, width: 6, kernel: 3, stride: 2, padding: 1),
        ConvGeometry(channels: 2, height: 6, width: 6, kernel: 1, stride: 2, padding: 0),
        ConvGeometry(channels: 1, height: 5, width: 5, kernel: 3, stride: 1, padding: 0),
        ConvGeometry(channels: 2, height: 28, width: 28, kernel: 3, stride: 2, padding: 1),
        ConvGeometry(channels: 1, height: 9, width: 19, kernel: 3, stride: 2, padding: 0),
        ConvGeometry(channels: 2, height: 8, width: 33, kernel: 3, stride: 2, padding: 1),
        ConvGeometry(channels: 2, height: 11, width: 10, kernel: 5, stride: 3, padding: 2),
        ConvGeometry(channels: 1, height: 2, width: 1, kernel: 3, stride: 2, padding: 1),
        ConvGeometry(channels: 1, height: 1, width: 1, kernel: 3, stride: 2, padding: 1),
    ]

    /// cols[(c*k + i)*k + j, n*Ho*Wo + oh*Wo + ow] = x[c, n0 + n, oh*s - p + i, ow*s - p + j], or 0.
    func reference(_ x: [Float], batch N: Int, first n0: Int, count nb: Int, _ g: ConvGeometry) -> [Float] {
        let Ho = g.outHeight, Wo = g.outWidth, k = g.kernel
        var cols = [Float](repeating: 0, count: g.rows * nb * Ho * Wo)
        for c in 0..<g.channels { for i in 0..<k { for j in 0..<k {
            let r = (c * k + i) * k + j
            for n in 0..<nb { for oh in 0..<Ho { for ow in 0..<Wo {
                let ih = oh * g.stride - g.padding + i, iw = ow * g.stride - g.padding + j
                guard ih >= 0 && ih < g.height && iw >= 0 && iw < g.width else { continue }
                cols[r * nb * Ho * Wo + n * Ho * Wo + oh * Wo + ow] =
                    x[((c * N + n0 + n) * g.height + ih) * g.width + iw]
            } } }
        } } }
        return cols
    }

    func testIm2colMatchesIndexArithmetic() {
        var rng = Xoshiro(seed: 5)
        let N = 5
        for g in geometries {
            let x = (0..<(g.channels * N * g.height * g.width)).map { _ in rng.normal() }
            for (n0, nb) in [(0, N), (1, 3), (4, 1)] {
                let expected = reference(x, batch: N, first: n0, count: nb, g)
                // NaN canaries: every column entry must be written.
                var cols = [Float](repeating: .nan, count: expected.count)
                x.withUnsafeBufferPointer { xp in
                    cols.withUnsafeMutableBufferPointer { cp in
                        im2col(xp.baseAddress!, batch: N, first: n0, count: nb, geometry: g, cols: cp.baseAddress!)
                    }
                }
                XCTAssertEqual(cols.map(\.bitPattern), expected.map(\.bitPattern), "\(g) n0 \(n0) nb \(nb)")
            }
        }
    }

    /// col2im is the adjoint of im2col: <im2col(x), Y> = <x, col2im(Y)> (and it accumulates).
    func testCol2imIsTheAdjoint() {
        var rng = Xoshiro(seed: 6)
        let N = 4, n0 = 1, nb = 2
        for g in geometries {
            let x = (0..<(g.channels * N * g.height * g.width)).map { _ in rng.normal() }
            let ycount = g.rows * nb * g.outHeight * g.outWidth
            let y = (0..<ycount).map { _ in rng.normal() }
            let cols = reference(x, batch: N, first: n0, count: nb, g)
            let lhs = zip(cols, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let base = (0..<x.count).map { _ in rng.normal() }
            var dX = base
            y.withUnsafeBufferPointer { yp in
                dX.withUnsafeMutableBufferPointer { dp in
                    col2im(yp.baseAddress!, batch: N, first: n0, count: nb, geometry: g, dX: dp.baseAddress!)
                }
            }
            let rhs = (0..<x.count).reduce(0.0) { $0 + Double(x[$1]) * Double(dX[$1] - base[$1]) }
            XCTAssertEqual(lhs, rhs, accuracy: 1e-4 * max(1, abs(lhs)), "\(g)")
        }
    }
}
