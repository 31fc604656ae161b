import XCTest
import Foundation
import MoCoTensor
import MoCoLayers
import MoCoComm
import SafeTensors
@testable import MoCo

/// The memory bank, NCE, the batch contrast and the end-to-end step (issue 11).
final class MechanismTests: XCTestCase {
    // MARK: - NCE

    /// Loss and gradient of NCE by the formulas of Wu et al. 2018, written out in Double for a
    /// 2 x (1 + 3) example with Z = 5 and N = 10 (so K·P_n = 0.3).
    func testNCEMatchesHandComputation() {
        let logits: [Float] = [1.0, 0.2, -0.5, 0.1,
                               -0.3, 0.4, 0.9, 0.0]
        let nce = NCE(dataCount: 10)
        nce.z = 5
        var d = [Float](repeating: 0, count: 8)
        let r = logits.withUnsafeBufferPointer { l in
            d.withUnsafeMutableBufferPointer { nce.forwardBackward(logits: l.baseAddress!, rows: 2, columns: 4, dLogits: $0.baseAddress!) }
        }
        let kPn = 3.0 / 10
        var loss = 0.0
        var grad = [Double](repeating: 0, count: 8)
        for i in 0..<2 {
            for j in 0..<4 {
                let p = exp(Double(logits[i * 4 + j])) / 5
                let h = p / (p + kPn)
                loss += j == 0 ? -log(h) : -log(1 - h)
                grad[i * 4 + j] = (j == 0 ? -(1 - h) : h) / 2
            }
        }
        XCTAssertEqual(r.loss, loss / 2, accuracy: 1e-9)
        XCTAssertEqual(r.acc1, 50)   // row 0's positive is its largest logit, row 1's is not
        for k in 0..<8 { XCTAssertEqual(Double(d[k]), grad[k], accuracy: 1e-7) }
    }

    /// dL/ds against central differences of the loss (in Double through Float logits: h = 1e-3,
    /// truncation O(h²·L''') ≈ 1e-7, rounding of Float logits ≈ 1e-7·|s|/h ≈ 1e-4 relative; 1e-3
    /// absolute on gradients of order 0.1).
    func testNCEGradientMatchesFiniteDifferences() {
        var rng = Xoshiro(seed: 5)
        let n = 3, cols = 6
        var logits = (0..<(n * cols)).map { _ in rng.normal() * 2 }
        let nce = NCE(dataCount: 50)
        logits.withUnsafeBufferPointer {
            let p = nce.partialZ(logits: $0.baseAddress!, rows: n, columns: cols)
            nce.setZ(sum: p.sum, count: p.count)
        }
        XCTAssertNotNil(nce.z)
        func loss(_ l: [Float]) -> Double {
            var d = [Float](repeating: 0, count: l.count)
            return l.withUnsafeBufferPointer { lp in
                d.withUnsafeMutableBufferPointer { nce.forwardBackward(logits: lp.baseAddress!, rows: n, columns: cols, dLogits: $0.baseAddress!).loss }
            }
        }
        var d = [Float](repeating: 0, count: logits.count)
        _ = logits.withUnsafeBufferPointer { lp in
            d.withUnsafeMutableBufferPointer { nce.forwardBackward(logits: lp.baseAddress!, rows: n, columns: cols, dLogits: $0.baseAddress!) }
        }
        let h: Float = 1e-3
        for k in 0..<logits.count {
            let v = logits[k]
            logits[k] = v + h; let lp = loss(logits)
            logits[k] = v - h; let lm = loss(logits)
            logits[k] = v
            XCTAssertEqual(Double(d[k]), (lp - lm) / Double(2 * h), accuracy: 1e-3, "logit \(k)")
        }
    }

    /// `--mechanism moco --loss nce`: the first step fixes Z = N·mean(exp(s)) over that step's
    /// logits [q·k, q·queue] / T, and the loss is NCE of those logits with the key as the data
    /// sample and the queue as the K noise samples.
    func testMoCoWithNCEUsesTheQueueAsNoise() throws {
        var c = MoCoConfig()
        c.loss = .nce; c.dim = 8; c.queueSize = 16; c.bnSplits = 2; c.temperature = 0.5
        let m = MoCoModel(config: c, inChannels: 1, engine: EngineConfig(threads: 1, conv: .im2col), seed: 2,
                          comm: SingleProcessCommunicator(), datasetCount: 100)
        m.plan(localBatch: 4, channels: 1, height: 8, width: 8)
        var rng = Xoshiro(seed: 3)
        let a = FloatBuffer(count: 4 * 64), b = FloatBuffer(count: 4 * 64)
        for i in 0..<a.count { a.ptr[i] = rng.normal(); b.ptr[i] = rng.normal() }
        XCTAssertNil(m.nce!.z)
        let r = try m.step(imQ: a.ptr, imK: b.ptr, perm: [1, 0, 3, 2], lr: 0.01)
        let logits = m.infoNCE.logits.array
        let meanExp = logits.map { exp(Double($0)) }.reduce(0, +) / Double(logits.count)
        XCTAssertEqual(Double(m.nce!.z!), 100 * meanExp, accuracy: 1e-4 * 100 * meanExp)
        let check = NCE(dataCount: 100)
        check.z = m.nce!.z
        var d = [Float](repeating: 0, count: logits.count)
        let want = logits.withUnsafeBufferPointer { l in
            d.withUnsafeMutableBufferPointer { check.forwardBackward(logits: l.baseAddress!, rows: 4, columns: 17, dLogits: $0.baseAddress!) }
        }
        XCTAssertEqual(r.loss, want.loss, accuracy: 1e-9 * abs(want.loss))
        // Z stays fixed after the first step.
        let z = m.nce!.z
        _ = try m.step(imQ: b.ptr, imK: a.ptr, perm: [0, 1, 2, 3], lr: 0.01)
        XCTAssertEqual(m.nce!.z, z)
    }

    // MARK: - Memory bank

    func testBankInitialisationIsInstDiscs() {
        let bank = MemoryBank(count: 2000, dim: 48, seed: 1)
        let a = 1 / Float(16).squareRoot()
        var s = 0.0, s2 = 0.0
        for i in 0..<bank.features.count {
            let v = bank.features.ptr[i]
            XCTAssertLessThanOrEqual(abs(v), a)
            s += Double(v); s2 += Double(v) * Double(v)
        }
        let N = Double(bank.features.count)
        XCTAssertEqual(s / N, 0, accuracy: 3e-3)
        XCTAssertEqual(s2 / N, 1.0 / 48, accuracy: 1e-3)   // variance a²/3 = 1/dim
    }

    /// The negatives depend on (seed, step, global position) only: the same rows whether the batch
    /// is drawn at once or by two ranks; another step or seed draws others.
    func testNegativeSamplingIsDeterministicAndSplitInvariant() {
        let bank = MemoryBank(count: 1000, dim: 8, seed: 0)
        func draw(seed: UInt64, step: Int, first: Int, n: Int) -> [Int32] {
            var r = [Int32](repeating: -1, count: n * 16)
            r.withUnsafeMutableBufferPointer { bank.sampleNegatives(seed: seed, step: step, firstPosition: first, samples: n, perSample: 16, into: $0.baseAddress!) }
            return r
        }
        let whole = draw(seed: 3, step: 7, first: 0, n: 8)
        XCTAssertEqual(whole, draw(seed: 3, step: 7, first: 0, n: 4) + draw(seed: 3, step: 7, first: 4, n: 4))
        XCTAssertEqual(whole, draw(seed: 3, step: 7, first: 0, n: 8))
        XCTAssertNotEqual(whole, draw(seed: 3, step: 8, first: 0, n: 8))
        XCTAssertNotEqual(whole, draw(seed: 4, step: 7, first: 0, n: 8))
        XCTAssertTrue(whole.allSatisfy { $0 >= 0 && $0 < 1000 })
        XCTAssertGreaterThan(Set(whole).count, 100)   // 128 draws from 1000 rows: nearly all distinct
    }

    /// Logits and dQ of the gathered rows against the same products written with subscripts.
    func testBankLogitsAndGradientMatchDenseComputation() {
        let bank = MemoryBank(count: 40, dim: 13, seed: 2)
        var rng = Xoshiro(seed: 9)
        let n = 3, K = 5, D = 13
        let q = (0..<(n * D)).map { _ in rng.normal() }
        let pos: [Int32] = [4, 17, 39]
        var neg: [Int32] = (0..<(n * K)).map { _ in Int32(rng.below(40)) }
        neg[1] = neg[0]; neg[K + 2] = 17   // repeated rows within a query and across queries
        var logits = [Float](repeating: 0, count: n * (1 + K))
        let dl = (0..<(n * (1 + K))).map { _ in rng.normal() }
        var dQ = [Float](repeating: 0, count: n * D)
        var g = MemoryBank.Grouping()
        g.build(positives: pos, negatives: neg, rows: n, perSample: K, bankRows: 40)
        bank.logits(q: q, grouping: g, rows: n, perSample: K, invT: 2, into: &logits, threads: 2)
        bank.gradient(dLogits: dl, grouping: g, rows: n, perSample: K, invT: 2, into: &dQ, threads: 2)
        let v = bank.features.array
        for i in 0..<n {
            let rows = [Int(pos[i])] + (0..<K).map { Int(neg[i * K + $0]) }
            for (j, r) in rows.enumerated() {
                var s: Float = 0
                for d in 0..<D { s += q[i * D + d] * v[r * D + d] }
                XCTAssertEqual(logits[i * (1 + K) + j], 2 * s, accuracy: 1e-5)
            }
            for d in 0..<D {
                var g: Float = 0
                for (j, r) in rows.enumerated() { g += dl[i * (1 + K) + j] * v[r * D + d] }
                XCTAssertEqual(dQ[i * D + d], 2 * g, accuracy: 1e-5)
            }
        }
    }

    func testBankUpdateIsMomentumThenNormalise() {
        let bank = MemoryBank(count: 4, dim: 3, seed: 0)
        let before = bank.features.array
        let idx: [Int64] = [2, 0]
        let f: [Float] = [0, 0, 1, 1, 0, 0]
        bank.update(indices: idx, features: f, count: 2, momentum: 0.5)
        let after = bank.features.array
        for (b, row) in [2, 0].enumerated() {
            var u = (0..<3).map { 0.5 * before[row * 3 + $0] + 0.5 * f[b * 3 + $0] }
            let norm = u.map { $0 * $0 }.reduce(0, +).squareRoot()
            u = u.map { $0 / norm }
            for d in 0..<3 { XCTAssertEqual(after[row * 3 + d], u[d], accuracy: 1e-6) }
        }
        for row in [1, 3] { for d in 0..<3 { XCTAssertEqual(after[row * 3 + d], before[row * 3 + d]) } }
    }

    /// The memory-bank step's gradient (NCE with Z fixed, through the sampled bank rows) against
    /// central differences of the step's loss along the gradient and a random direction. Each
    /// evaluation runs on a fresh method (same seed: same bank, same draws; lr 0), so the bank
    /// update of one evaluation does not reach the next. ε and tolerances as the end-to-end test.
    func testMemoryBankStepGradientMatchesFiniteDifferences() throws {
        var c = MoCoConfig()
        c.mechanism = .memoryBank; c.loss = .nce; c.dim = 16; c.queueSize = 32; c.bnSplits = 2; c.temperature = 0.5
        c.weightDecay = 0
        let n = 8
        var rng = Xoshiro(seed: 31)
        let imQ = FloatBuffer(count: n * 64)
        for i in 0..<imQ.count { imQ.ptr[i] = rng.normal() }
        let indices = [5, 17, 2, 40, 33, 8, 61, 12]
        func method() -> MemoryBankMethod {
            let m = MemoryBankMethod(config: c, inChannels: 1, datasetCount: 64, engine: EngineConfig(threads: 1, conv: .im2col),
                                     seed: 7, comm: SingleProcessCommunicator())
            m.plan(localBatch: n, channels: 1, height: 8, width: 8)
            m.nce!.z = 90
            return m
        }
        let base = method()
        _ = try base.step(StepInput(imQ: imQ.ptr, imK: imQ.ptr, indices: indices, perm: Array(0..<n), lr: 0, step: 3))
        let g = base.query.params.grads.array, w0 = base.query.params.values.array
        func loss(_ dir: [Float], _ eps: Float) throws -> Double {
            let m = method()
            for i in 0..<w0.count { m.query.params.values.ptr[i] = w0[i] + eps * dir[i] }
            return try m.step(StepInput(imQ: imQ.ptr, imK: imQ.ptr, indices: indices, perm: Array(0..<n), lr: 0, step: 3)).loss
        }
        let gn = g.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
        let ĝ = g.map { Float(Double($0) / gn) }
        let fd = (try loss(ĝ, 1e-4) - loss(ĝ, -1e-4)) / 2e-4
        XCTAssertEqual(fd, gn, accuracy: 0.01 * gn, "along the gradient")
        print("memory-bank d/dε along the gradient: finite differences \(fd), analytic \(gn)")
        // Single coordinates: the 6 largest gradient entries of the head (a random direction's
        // derivative, ~0.01 here, is below the float32 rounding of this NCE loss over 2ε; the
        // stem's weights curve too strongly for single-coordinate differences: -2.36 / -2.92 /
        // -3.03 / -3.10 at ε = 3e-3 / 1e-3 / 3e-4 / 1e-4 against -3.25 analytic for the largest).
        // ε = 1e-3: rounding ≈ 1e-5 / 2e-3 = 5e-3 absolute; tolerance 3% + 1e-2.
        let head = base.query.headOffset
        let top = g.indices.filter { $0 >= head }.sorted { abs(g[$0]) > abs(g[$1]) }.prefix(6)
        for i in top {
            var e = [Float](repeating: 0, count: g.count); e[i] = 1
            let d = (try loss(e, 1e-3) - loss(e, -1e-3)) / 2e-3
            XCTAssertEqual(d, Double(g[i]), accuracy: 0.03 * abs(Double(g[i])) + 1e-2, "parameter \(i)")
        }
    }

    // MARK: - Batch contrast

    /// dQ and dK of CE(q·kᵀ/T, offset + i) against central differences (h = 1e-2 on inputs of
    /// order 1, loss of order 1: float32 rounding of the loss ≈ 1e-7 / h = 1e-5, truncation
    /// O(h²) ≈ 1e-4; tolerance 2e-3).
    func testBatchContrastGradientsMatchFiniteDifferences() {
        let n = 3, B = 6, D = 5, offset = 2
        var rng = Xoshiro(seed: 11)
        var q = (0..<(n * D)).map { _ in rng.normal() }
        var k = (0..<(B * D)).map { _ in rng.normal() }
        let bc = BatchContrast(dim: D)
        bc.plan(rows: n, keys: B)
        func loss() -> Double { bc.forwardBackward(q: q, k: k, offset: offset, temperature: 0.5, keyGradient: true).loss }
        _ = loss()
        let dQ = bc.dQ.array, dK = bc.dK.array
        let h: Float = 1e-2
        for i in 0..<q.count {
            let v = q[i]; q[i] = v + h; let lp = loss(); q[i] = v - h; let lm = loss(); q[i] = v
            XCTAssertEqual(Double(dQ[i]), (lp - lm) / Double(2 * h), accuracy: 2e-3, "dQ[\(i)]")
        }
        for i in 0..<k.count {
            let v = k[i]; k[i] = v + h; let lp = loss(); k[i] = v - h; let lm = loss(); k[i] = v
            XCTAssertEqual(Double(dK[i]), (lp - lm) / Double(2 * h), accuracy: 2e-3, "dK[\(i)]")
        }
        // Keys outside every query's positive still get gradient as negatives.
        XCTAssertGreaterThan(abs(dK[0]), 1e-4)
    }

    // MARK: - End-to-end

    /// The gradient of the end-to-end loss, through queries and keys, against central differences
    /// of the whole step's loss along two directions of parameter space: the gradient itself
    /// (d/dε L(θ + ε·g) = |g|²) and a random unit direction u (= g·u). The steps run with lr 0,
    /// so the weights do not move; BatchNorm in training mode does not read its running
    /// statistics. Along g the loss curves strongly (ReLU and BatchNorm over 4 samples): the
    /// central difference is 15.44 / 15.75 / 15.77 at ε = 1e-3 / 3e-4 / 1e-4 against 15.81
    /// analytic (measured), so ε = 1e-4 there, where float32 rounding of the loss (≈ 1e-6) over
    /// 2ε is ≈ 5e-3 absolute: tolerance 1%. Along u (derivative ≈ 0.05) ε = 1e-3: rounding
    /// ≈ 5e-4, i.e. 1%; tolerance 3%. Dropping the key path's gradient (a large share of the
    /// total, next test) would miss by far more.
    func testEndToEndGradientThroughKeysMatchesFiniteDifferences() throws {
        var c = MoCoConfig()
        c.mechanism = .endToEnd; c.dim = 16; c.bnSplits = 2; c.temperature = 0.5; c.weightDecay = 0
        // ε was set at torchvision's weight scale (float32 losses; see testEncoderGradient).
        c.initialization = .torchvision
        let m = EndToEndMethod(config: c, inChannels: 1, engine: EngineConfig(threads: 1, conv: .im2col), seed: 3,
                               comm: SingleProcessCommunicator())
        let n = 8
        m.plan(localBatch: n, channels: 1, height: 8, width: 8)
        var rng = Xoshiro(seed: 21)
        let imQ = FloatBuffer(count: n * 64), imK = FloatBuffer(count: n * 64)
        for i in 0..<imQ.count { imQ.ptr[i] = rng.normal(); imK.ptr[i] = rng.normal() }
        let perm = [3, 6, 0, 1, 7, 2, 5, 4]
        func loss() throws -> Double {
            try m.step(StepInput(imQ: imQ.ptr, imK: imK.ptr, indices: Array(0..<n), perm: perm, lr: 0, step: 0)).loss
        }
        _ = try loss()
        let g = m.query.params.grads.array
        let P = g.count, w = m.query.params.values
        let w0 = w.array
        var u = (0..<P).map { _ in rng.normal() }
        let un = u.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
        u = u.map { Float(Double($0) / un) }
        let gn = g.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
        for (name, dir, eps, tolerance) in [("gradient", g.map { Float(Double($0) / gn) }, Float(1e-4), 0.01),
                                            ("random", u, Float(1e-3), 0.03)] {
            for i in 0..<P { w.ptr[i] = w0[i] + eps * dir[i] }
            let lp = try loss()
            for i in 0..<P { w.ptr[i] = w0[i] - eps * dir[i] }
            let lm = try loss()
            for i in 0..<P { w.ptr[i] = w0[i] }
            let fd = (lp - lm) / Double(2 * eps)
            var analytic = 0.0
            for i in 0..<P { analytic += Double(g[i]) * Double(dir[i]) }
            XCTAssertEqual(fd, analytic, accuracy: tolerance * abs(analytic), "\(name) direction")
            print("end-to-end d/dε along the \(name) direction: finite differences \(fd), analytic \(analytic)")
        }
        XCTAssertGreaterThan(gn, 1e-3)
    }

    /// With the keys' gradient, the step differs from one with queries only: the key path is
    /// really part of the gradient (the two share the loss value).
    func testEndToEndKeyPathContributesToTheGradient() throws {
        var c = MoCoConfig()
        c.mechanism = .endToEnd; c.dim = 8; c.bnSplits = 1
        let m = EndToEndMethod(config: c, inChannels: 1, engine: EngineConfig(threads: 1, conv: .im2col), seed: 1,
                               comm: SingleProcessCommunicator())
        m.plan(localBatch: 4, channels: 1, height: 8, width: 8)
        var rng = Xoshiro(seed: 2)
        let im = FloatBuffer(count: 4 * 64), im2 = FloatBuffer(count: 4 * 64)
        for i in 0..<im.count { im.ptr[i] = rng.normal(); im2.ptr[i] = rng.normal() }
        _ = try m.step(StepInput(imQ: im.ptr, imK: im2.ptr, indices: [0, 1, 2, 3], perm: [0, 1, 2, 3], lr: 0, step: 0))
        let total = m.query.params.grads.array
        let keyPart = m.keyPath.params.grads.array
        let kn = keyPart.map { Double($0) * Double($0) }.reduce(0, +), tn = total.map { Double($0) * Double($0) }.reduce(0, +)
        XCTAssertGreaterThan(kn, 0.01 * tn, "the key path's gradient is a real share of the total")
    }

    // MARK: - Whole runs: resume and mechanisms' checkpoints

    func tinyConfig(_ mechanism: Mechanism, loss: ContrastLoss, out: String) throws -> TrainConfig {
        var c = try TrainConfig.preset("moco-v2")
        if mechanism == .mocoV3 { c = TrainConfig.preset(.mocoV3); c.moco.mlpDim = 32 }
        c.data = .synthetic; c.trainSubset = 32; c.batchSize = 16; c.epochs = 2
        c.moco.mechanism = mechanism; c.moco.loss = loss
        c.moco.queueSize = 40; c.moco.bnSplits = 2; c.knnEvery = 0; c.logEvery = 100; c.saveEvery = 1; c.out = out
        c.engine = EngineConfig(threads: 1, conv: .im2col)
        return c
    }

    func tensors(_ path: String) throws -> [String: [UInt8]] {
        let f = try SafeTensorsFile(path: path)
        var out: [String: [UInt8]] = [:]
        for n in f.names { out[n] = try f.withRawBytes(n) { Array($0) } }
        return out
    }

    /// For every mechanism beside MoCo (whose resume `ResumeTests` pins): 2 epochs straight equal
    /// 1 epoch and a resume, bit for bit, and the checkpoint holds the mechanism's state (NCE's Z
    /// included).
    func testEveryMechanismResumesBitwise() throws {
        let cases: [(Mechanism, ContrastLoss, [String], [String])] = [
            (.memoryBank, .nce, ["memory_bank", "nce_z"], ["queue", "encoder_k.conv1.weight"]),
            (.endToEnd, .infonce, ["encoder_q.conv1.weight"], ["queue", "memory_bank", "encoder_k.conv1.weight"]),
            (.mocoV3, .infonce, ["encoder_q.predictor.0.weight", "encoder_k.fc.4.running_mean",
                                 "optimizer.momentum_buffer.predictor.3.weight"], ["queue", "encoder_k.predictor.0.weight"]),
        ]
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("moco-mech-resume-\(getpid())")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let quiet: (String) -> Void = { _ in }
        for (mech, loss, present, absent) in cases {
            let what = "\(mech.rawValue)/\(loss.rawValue)"
            let full = tmp.appendingPathComponent("\(mech.rawValue)-\(loss.rawValue)-full").path
            let split = tmp.appendingPathComponent("\(mech.rawValue)-\(loss.rawValue)-split").path
            let s = try Trainer(config: try tinyConfig(mech, loss: loss, out: full), comm: SingleProcessCommunicator(), say: quiet).run()
            XCTAssertTrue(s.lastLoss.isFinite, what)
            _ = try Trainer(config: try tinyConfig(mech, loss: loss, out: split), comm: SingleProcessCommunicator(), say: quiet).run(stopAfter: 1)
            _ = try Trainer(config: try tinyConfig(mech, loss: loss, out: split), comm: SingleProcessCommunicator(), say: quiet).run(resume: "auto")
            let a = try tensors(full + "/checkpoint_0002.safetensors"), b = try tensors(split + "/checkpoint_0002.safetensors")
            XCTAssertEqual(Set(a.keys), Set(b.keys), what)
            for name in present { XCTAssertNotNil(a[name], "\(what): \(name) missing") }
            for name in absent { XCTAssertNil(a[name], "\(what): unexpected \(name)") }
            for (name, bytes) in a { XCTAssertEqual(bytes, b[name], "\(what): \(name) differs after resume") }
            let e1 = try tensors(split + "/checkpoint_0001.safetensors")
            XCTAssertNotEqual(e1["encoder_q.conv1.weight"], a["encoder_q.conv1.weight"], what)
            if mech == .memoryBank { XCTAssertNotEqual(e1["memory_bank"], a["memory_bank"], "\(what): the bank moved") }
        }
    }

    func testMechanismCombinationsAreValidated() throws {
        var c = try TrainConfig.preset("moco-v2")
        c.moco.mechanism = .endToEnd; c.moco.loss = .nce
        XCTAssertThrowsError(try c.validate(worldSize: 1)) { XCTAssertTrue("\($0)".contains("--loss nce"), "\($0)") }
        c.moco.loss = .infonce; c.moco.symmetric = true
        XCTAssertThrowsError(try c.validate(worldSize: 1)) { XCTAssertTrue("\($0)".contains("--symmetric"), "\($0)") }
        c = try TrainConfig.preset("instdisc")
        XCTAssertEqual(c.moco.mechanism, .memoryBank); XCTAssertEqual(c.moco.loss, .nce); XCTAssertEqual(c.moco.head, .linear)
        XCTAssertNoThrow(try c.validate(worldSize: 1))
        c.moco.bankMomentum = 1
        XCTAssertThrowsError(try c.validate(worldSize: 1)) { XCTAssertTrue("\($0)".contains("--bank-momentum"), "\($0)") }
        // A checkpoint of another mechanism is refused with the reason.
        var a = try TrainConfig.preset("moco-v2"), b = a
        b.moco.mechanism = .memoryBank
        XCTAssertTrue(a.resumeMismatches(b).contains { $0.hasPrefix("mechanism") })
        a.moco.loss = .nce
        XCTAssertTrue(a.resumeMismatches(TrainConfig.preset(.mocoV2)).contains { $0.hasPrefix("loss") })
    }
}
