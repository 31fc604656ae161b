import XCTest
import MoCoTensor
@testable import MoCoLayers

final class BatchNormTests: XCTestCase {
    func makeBN(_ c: Int, fused: Bool = false) -> (BatchNorm2d, ParameterStore, ParameterStore) {
        let p = ParameterStore(), b = ParameterStore(withGradients: false)
        let bn = BatchNorm2d("bn", params: p, buffers: b, channels: c, fusedReLU: fused)
        p.finalize(); b.finalize(); bn.resetParameters()
        return (bn, p, b)
    }

    /// Forward and running statistics against values computed by hand in Double.
    func testTrainingForwardAndRunningStats() {
        let (bn, p, b) = makeBN(2)
        p.set("bn.weight", [2, 0.5]); p.set("bn.bias", [0.1, -1])
        bn.plan(batch: 2, spatial: 2, backward: false)
        // channel-major [C=2, N=2, HW=2]
        let x = FloatBuffer([1, 2, 3, 6,   -1, -1, 0, 2])
        bn.forward(x.ptr, training: true)
        // channel 0: mean 3, biased var (4+1+0+9)/4 = 3.5, unbiased 14/3
        let inv0 = 1 / (3.5 + 1e-5).squareRoot()
        XCTAssertEqual(Double(bn.y.ptr[0]), 2 * (1 - 3) * inv0 + 0.1, accuracy: 1e-5)
        XCTAssertEqual(Double(bn.y.ptr[3]), 2 * (6 - 3) * inv0 + 0.1, accuracy: 1e-5)
        // channel 1: mean 0, biased var (1+1+0+4)/4 = 1.5, unbiased 2
        let inv1 = 1 / (1.5 + 1e-5).squareRoot()
        XCTAssertEqual(Double(bn.y.ptr[7]), 0.5 * 2 * inv1 - 1, accuracy: 1e-5)
        XCTAssertEqual(b.array("bn.running_mean")[0], 0.9 * 0 + 0.1 * 3, accuracy: 1e-6)
        XCTAssertEqual(b.array("bn.running_var")[0], 0.9 * 1 + 0.1 * 14 / 3, accuracy: 1e-6)
        XCTAssertEqual(b.array("bn.running_var")[1], 0.9 * 1 + 0.1 * 2, accuracy: 1e-6)
        XCTAssertEqual(bn.numBatchesTracked, 1)
    }

    /// Statistics must not cancel when |mean| ≫ std: inputs 1000 + 0.01·z normalise to unit
    /// variance (a one-pass Float Σx² − n·m² keeps no correct digit here), and the result must
    /// not depend on where the sample chunk starts in memory (2 ranks vs 1 process equivalence).
    func testStatisticsWithLargeMeanSmallVariance() {
        var rng = Xoshiro(seed: 27)
        let (bn, _, b) = makeBN(1)
        let n = 4, hw = 300
        bn.plan(batch: n, spatial: hw, backward: false)
        let x = FloatBuffer(count: n * hw)
        for i in 0..<x.count { x.ptr[i] = 1000 + 0.01 * rng.normal() }
        bn.forward(x.ptr, training: true)
        func meanVar(_ p: UnsafePointer<Float>) -> (Double, Double) {
            var m = 0.0, v = 0.0
            for i in 0..<x.count { m += Double(p[i]) }
            m /= Double(x.count)
            for i in 0..<x.count { v += (Double(p[i]) - m) * (Double(p[i]) - m) }
            return (m, v / Double(x.count))
        }
        let (_, varX) = meanVar(x.ptr)          // ≈ 1e-4, exact in Double
        let (my, vy) = meanVar(bn.y.ptr)
        XCTAssertEqual(my, 0, accuracy: 1e-3)
        XCTAssertEqual(vy, varX / (varX + 1e-5), accuracy: 1e-3, "normalised variance σ²/(σ²+eps)")
        let unbiased = varX * Double(x.count) / Double(x.count - 1)
        XCTAssertEqual(Double(b.array("bn.running_var")[0]), 0.9 + 0.1 * unbiased, accuracy: 1e-7)
    }

    func testEvalUsesRunningStats() {
        let (bn, p, b) = makeBN(1)
        p.set("bn.weight", [3]); p.set("bn.bias", [1])
        b.set("bn.running_mean", [2]); b.set("bn.running_var", [4])
        bn.plan(batch: 1, spatial: 2, backward: false)
        let x = FloatBuffer([2, 6])
        bn.forward(x.ptr, training: false)
        XCTAssertEqual(bn.y.ptr[0], 1, accuracy: 1e-6)
        XCTAssertEqual(Double(bn.y.ptr[1]), 3 * 4 / (4 + 1e-5).squareRoot() + 1, accuracy: 1e-5)
        XCTAssertEqual(b.array("bn.running_mean"), [2])
        XCTAssertEqual(bn.numBatchesTracked, 0)
    }

    func gradCheckBN(splits: Int, fused: Bool, seed: UInt64) {
        var rng = Xoshiro(seed: seed)
        let (bn, p, _) = makeBN(3, fused: fused)
        for i in 0..<3 { p.values.ptr[bn.weightOffset + i] = 1 + rng.normal() * 0.3; p.values.ptr[bn.biasOffset + i] = rng.normal() * 0.3 }
        let n = 4, hw = 5
        bn.splits = splits
        bn.plan(batch: n, spatial: hw, backward: true)
        let x = randomBuffer(3 * n * hw, &rng, scale: 2), r = randomBuffer(3 * n * hw, &rng)
        bn.forward(x.ptr, training: true)
        let dY = FloatBuffer(r.array)
        bn.backward(dY.ptr)
        let loss = { () -> Double in bn.forward(x.ptr, training: true); return dot(r, bn.y.ptr) }
        var gc = GradCheck(); gc.h = 1e-3; gc.samples = 60
        gc.check("bn(S=\(splits), relu=\(fused)) dX", p: x.ptr, count: x.count, analytic: bn.dX.array, loss: loss, rng: &rng)
        gc.check("bn dGamma", p: p.values.ptr + bn.weightOffset, count: 3, analytic: p.gradArray("bn.weight"), loss: loss, rng: &rng)
        gc.check("bn dBeta", p: p.values.ptr + bn.biasOffset, count: 3, analytic: p.gradArray("bn.bias"), loss: loss, rng: &rng)
    }

    func testGradientPlain() { gradCheckBN(splits: 1, fused: false, seed: 21) }
    func testGradientFusedReLU() { gradCheckBN(splits: 1, fused: true, seed: 22) }
    func testGradientSplit2() { gradCheckBN(splits: 2, fused: false, seed: 23) }
    func testGradientSplit4FusedReLU() { gradCheckBN(splits: 4, fused: true, seed: 24) }

    /// `recomputeOutput` writes bit for bit what the training forward wrote (fused ReLU,
    /// 2 splits), after the output buffer was overwritten.
    func testRecomputeOutputIsBitwiseTheForward() {
        var rng = Xoshiro(seed: 26)
        let (bn, p, _) = makeBN(3, fused: true)
        bn.splits = 2
        for i in 0..<3 { p.values.ptr[bn.weightOffset + i] = 1 + rng.normal() * 0.3; p.values.ptr[bn.biasOffset + i] = rng.normal() * 0.3 }
        bn.plan(batch: 4, spatial: 5, backward: true)
        let x = randomBuffer(3 * 4 * 5, &rng)
        bn.forward(x.ptr, training: true)
        let expected = bn.y.array
        bn.y.ptr.update(repeating: .nan, count: bn.y.count)
        bn.recomputeOutput()
        XCTAssertEqual(bn.y.array.map(\.bitPattern), expected.map(\.bitPattern))
    }

    /// Split BN with S splits equals S separate BatchNorms over contiguous chunks, with the
    /// running statistics the mean of the S separate updates.
    func testSplitEqualsSeparateBatchNorms() {
        var rng = Xoshiro(seed: 25)
        let C = 2, N = 6, HW = 3, S = 3
        let (bn, _, b) = makeBN(C)
        bn.splits = S
        bn.plan(batch: N, spatial: HW, backward: false)
        let x = randomBuffer(C * N * HW, &rng)
        bn.forward(x.ptr, training: true)
        var meanUpd = [Float](repeating: 0, count: C), varUpd = meanUpd
        for s in 0..<S {
            let (one, _, ob) = makeBN(C)
            one.plan(batch: N / S, spatial: HW, backward: false)
            let part = FloatBuffer(count: C * (N / S) * HW)
            for c in 0..<C { (part.ptr + c * (N / S) * HW).update(from: x.ptr + c * N * HW + s * (N / S) * HW, count: (N / S) * HW) }
            one.forward(part.ptr, training: true)
            for c in 0..<C {
                for i in 0..<((N / S) * HW) {
                    XCTAssertEqual(bn.y.ptr[c * N * HW + s * (N / S) * HW + i], one.y.ptr[c * (N / S) * HW + i], accuracy: 1e-5)
                }
                meanUpd[c] += ob.array("bn.running_mean")[c] / Float(S)
                varUpd[c] += ob.array("bn.running_var")[c] / Float(S)
            }
        }
        for c in 0..<C {
            XCTAssertEqual(b.array("bn.running_mean")[c], meanUpd[c], accuracy: 1e-6)
            XCTAssertEqual(b.array("bn.running_var")[c], varUpd[c], accuracy: 1e-6)
        }
    }

    func testBatchNorm1dGradientAndStats() {
        var rng = Xoshiro(seed: 26)
        let p = ParameterStore(), b = ParameterStore(withGradients: false)
        let bn = BatchNorm1d("h", params: p, buffers: b, features: 3)
        p.finalize(); b.finalize(); bn.resetParameters()
        p.set("h.weight", [1.5, 0.7, 1]); p.set("h.bias", [0.2, 0, -0.3])
        bn.plan(batch: 5, backward: true)
        let x = randomBuffer(15, &rng), r = randomBuffer(15, &rng)
        bn.forward(x.ptr, training: true)
        var m = 0.0; for n in 0..<5 { m += Double(x.ptr[n * 3 + 1]) }; m /= 5
        XCTAssertEqual(Double(b.array("h.running_mean")[1]), 0.1 * m, accuracy: 1e-6)
        bn.backward(r.ptr)
        let loss = { () -> Double in bn.forward(x.ptr, training: true); return dot(r, bn.y.ptr) }
        var gc = GradCheck(); gc.h = 1e-3
        gc.check("bn1d dX", p: x.ptr, count: 15, analytic: bn.dX.array, loss: loss, rng: &rng)
        gc.check("bn1d dGamma", p: p.values.ptr + bn.weightOffset, count: 3, analytic: p.gradArray("h.weight"), loss: loss, rng: &rng)
    }
}
