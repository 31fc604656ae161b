import XCTest
import MoCoTensor
@testable import MoCoLayers

final class DenseGradientTests: XCTestCase {
    func testLinear() {
        var rng = Xoshiro(seed: 11)
        let params = ParameterStore()
        let lin = Linear("fc", params: params, inFeatures: 5, outFeatures: 3)
        params.finalize()
        for i in 0..<params.count { params.values.ptr[i] = rng.normal() }
        lin.plan(batch: 4, backward: true)
        let x = randomBuffer(20, &rng), r = randomBuffer(12, &rng)
        lin.forward(x.ptr)
        // y = x W^T + b by hand
        let W = params.array("fc.weight"), b = params.array("fc.bias")
        for n in 0..<4 { for o in 0..<3 {
            var s = Double(b[o]); for i in 0..<5 { s += Double(x.ptr[n * 5 + i]) * Double(W[o * 5 + i]) }
            XCTAssertEqual(Double(lin.y.ptr[n * 3 + o]), s, accuracy: 1e-5)
        } }
        lin.backward(r.ptr)
        let loss = { () -> Double in lin.forward(x.ptr); return dot(r, lin.y.ptr) }
        let gc = GradCheck()
        gc.check("linear dX", p: x.ptr, count: 20, analytic: lin.dX.array, loss: loss, rng: &rng)
        gc.check("linear dW", p: params.values.ptr + lin.weightOffset, count: 15, analytic: params.gradArray("fc.weight"), loss: loss, rng: &rng)
        gc.check("linear db", p: params.values.ptr + lin.biasOffset, count: 3, analytic: params.gradArray("fc.bias"), loss: loss, rng: &rng)
    }

    func testReLU() {
        var rng = Xoshiro(seed: 12)
        let relu = ReLU(); relu.plan(count: 30, backward: true)
        let x = randomBuffer(30, &rng), r = randomBuffer(30, &rng)
        for i in 0..<30 where abs(x.ptr[i]) < 0.05 { x.ptr[i] = 0.3 }   // keep clear of the kink
        relu.forward(x.ptr)
        for i in 0..<30 { XCTAssertEqual(relu.y.ptr[i], max(0, x.ptr[i])) }
        relu.backward(r.ptr)
        GradCheck().check("relu dX", p: x.ptr, count: 30, analytic: relu.dX.array,
                          loss: { relu.forward(x.ptr); return dot(r, relu.y.ptr) }, rng: &rng)
    }

    func testAddReLU() {
        var rng = Xoshiro(seed: 13)
        let add = AddReLU(); add.plan(count: 24)
        let a = randomBuffer(24, &rng), b = randomBuffer(24, &rng), r = randomBuffer(24, &rng)
        for i in 0..<24 where abs(a.ptr[i] + b.ptr[i]) < 0.05 { a.ptr[i] += 0.3 }
        add.forward(a.ptr, b.ptr)
        let dZ = FloatBuffer(r.array); add.backward(dZ.ptr)
        let loss = { () -> Double in add.forward(a.ptr, b.ptr); return dot(r, add.y.ptr) }
        GradCheck().check("add dA", p: a.ptr, count: 24, analytic: dZ.array, loss: loss, rng: &rng)
        GradCheck().check("add dB", p: b.ptr, count: 24, analytic: dZ.array, loss: loss, rng: &rng)
    }

    func testGlobalAvgPool() {
        var rng = Xoshiro(seed: 14)
        let pool = GlobalAvgPool(); pool.plan(channels: 3, batch: 2, spatial: 4, backward: true)
        let x = randomBuffer(24, &rng), r = randomBuffer(6, &rng)
        pool.forward(x.ptr)
        // y[n, c] = mean of x[c, n, :]
        XCTAssertEqual(pool.y.ptr[1 * 3 + 2], (0..<4).map { x.ptr[(2 * 2 + 1) * 4 + $0] }.reduce(0, +) / 4, accuracy: 1e-6)
        pool.backward(r.ptr)
        GradCheck().check("pool dX", p: x.ptr, count: 24, analytic: pool.dX.array,
                          loss: { pool.forward(x.ptr); return dot(r, pool.y.ptr) }, rng: &rng)
    }

    func testL2Normalize() {
        var rng = Xoshiro(seed: 15)
        let l2 = L2Normalize(); l2.plan(rows: 3, dim: 5, backward: true)
        let x = randomBuffer(15, &rng), r = randomBuffer(15, &rng)
        l2.forward(x.ptr)
        for n in 0..<3 {
            var s: Float = 0; for i in 0..<5 { s += l2.y.ptr[n * 5 + i] * l2.y.ptr[n * 5 + i] }
            XCTAssertEqual(s, 1, accuracy: 1e-6)
        }
        l2.backward(r.ptr)
        var gc = GradCheck(); gc.h = 1e-3
        gc.check("l2 dX", p: x.ptr, count: 15, analytic: l2.dX.array,
                 loss: { l2.forward(x.ptr); return dot(r, l2.y.ptr) }, rng: &rng)
    }

    func testCrossEntropy() {
        var rng = Xoshiro(seed: 16)
        let z = randomBuffer(4 * 6, &rng, scale: 2)
        let targets = [0, 3, 5, 1]
        let d = FloatBuffer(count: 24)
        let (loss, _) = CrossEntropy.forwardBackward(logits: z.ptr, rows: 4, classes: 6, targets: { targets[$0] }, dLogits: d.ptr)
        // By hand: mean of logsumexp - z[t]
        var ref = 0.0
        for n in 0..<4 {
            let row = (0..<6).map { Double(z.ptr[n * 6 + $0]) }
            ref += log(row.map { exp($0) }.reduce(0, +)) - row[targets[n]]
        }
        XCTAssertEqual(loss, ref / 4, accuracy: 1e-6)
        var gc = GradCheck(); gc.h = 1e-3
        gc.check("ce dZ", p: z.ptr, count: 24, analytic: d.array, loss: {
            CrossEntropy.forwardBackward(logits: z.ptr, rows: 4, classes: 6, targets: { targets[$0] }, dLogits: nil).loss
        }, rng: &rng)
    }

    /// Rows split over workers give the bits of one worker: loss, accuracy and every dLogits
    /// value, with and without dLogits; the accuracy counts each row once (ties included).
    func testCrossEntropyThreadsGiveTheSameBits() {
        var rng = Xoshiro(seed: 17)
        let N = 77, K = 41
        let z = randomBuffer(N * K, &rng, scale: 3)
        for n in stride(from: 0, to: N, by: 5) { z.ptr[n * K + 2] = z.ptr[n * K] }   // ties with the target's logit
        let targets = (0..<N).map { ($0 * 7) % K }
        let d1 = FloatBuffer(count: N * K)
        let one = CrossEntropy.forwardBackward(logits: z.ptr, rows: N, classes: K, targets: { targets[$0] }, dLogits: d1.ptr)
        var accRef = 0
        for n in 0..<N {
            var arg = 0
            for j in 1..<K where z.ptr[n * K + j] > z.ptr[n * K + arg] { arg = j }
            if arg == targets[n] { accRef += 1 }
        }
        XCTAssertEqual(one.acc1, 100 * Double(accRef) / Double(N))
        for threads in [2, 3, 4] {
            let dT = FloatBuffer(count: N * K)
            dT.ptr.update(repeating: .nan, count: N * K)
            let many = CrossEntropy.forwardBackward(logits: z.ptr, rows: N, classes: K, targets: { targets[$0] },
                                                    dLogits: dT.ptr, threads: threads)
            XCTAssertEqual(many.loss.bitPattern, one.loss.bitPattern, "loss on \(threads) threads")
            XCTAssertEqual(many.acc1, one.acc1, "acc1 on \(threads) threads")
            XCTAssertEqual(memcmp(dT.ptr, d1.ptr, N * K * 4), 0, "dLogits on \(threads) threads")
            let noGrad = CrossEntropy.forwardBackward(logits: z.ptr, rows: N, classes: K, targets: { targets[$0] },
                                                      dLogits: nil, threads: threads)
            XCTAssertEqual(noGrad.loss.bitPattern, one.loss.bitPattern)
        }
    }

    func testCrossEntropyOfEqualLogitsIsLogK() {
        let z = FloatBuffer(count: 3 * 10)
        for i in 0..<30 { z.ptr[i] = 0.37 }
        let (loss, _) = CrossEntropy.forwardBackward(logits: z.ptr, rows: 3, classes: 10, targets: { _ in 0 }, dLogits: nil)
        XCTAssertEqual(loss, log(10), accuracy: 1e-6)
    }
}
