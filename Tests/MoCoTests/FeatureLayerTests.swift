import XCTest
import Foundation
import MoCoComm
import MoCoData
import MoCoLayers
import MoCoTensor
import SafeTensors
@testable import MoCo

/// `FeatureLayer` (`--knn-features`, `--features`): each layer's features against the encoder's
/// own forward, computed here independently of `FeatureExtractor`'s copy.
final class FeatureLayerTests: XCTestCase {
    let ds = Dataset.synthetic(split: .train, count: 12)

    /// The encoder's own eval-mode forward of `ds`'s first `n` images.
    func reference(_ e: Encoder, n: Int) -> (features: [Float], hidden: [Float]?, projection: [Float], grids: [Int: [Float]]) {
        e.plan(batch: n, height: 28, width: 28, backward: false)
        let x = FloatBuffer(count: n * ds.imageSize)
        for i in 0..<n { normalizedImage(ds, index: i, out: x.ptr + i * ds.imageSize) }
        e.forward(x.ptr, training: false, withHead: true)
        let d = e.featureDim
        // adaptive_avg_pool2d(map, g).flatten(1) of the last map [d, n, h, w], bins written
        // out as floor(i·h/g) ..< ceil((i+1)·h/g).
        let (h, w) = e.lastMapSize
        XCTAssertEqual(h, 7); XCTAssertEqual(w, 7)
        var grids: [Int: [Float]] = [:]
        for g in [2, 3, 4] {
            var rows = [Float](repeating: 0, count: n * d * g * g)
            for s in 0..<n {
                for c in 0..<d {
                    for i in 0..<g {
                        for j in 0..<g {
                            let r0 = Int((Double(i * h) / Double(g)).rounded(.down)), r1 = Int((Double((i + 1) * h) / Double(g)).rounded(.up))
                            let c0 = Int((Double(j * w) / Double(g)).rounded(.down)), c1 = Int((Double((j + 1) * w) / Double(g)).rounded(.up))
                            var sum: Double = 0
                            for r in r0..<r1 { for q in c0..<c1 { sum += Double(e.lastMap[((c * n + s) * h + r) * w + q]) } }
                            rows[s * d * g * g + (c * g + i) * g + j] = Float(sum / Double((r1 - r0) * (c1 - c0)))
                        }
                    }
                }
            }
            grids[g] = rows
        }
        return (Array(UnsafeBufferPointer(start: e.features, count: n * d)),
                e.headHidden.map { Array(UnsafeBufferPointer(start: $0, count: n * d)) },
                Array(UnsafeBufferPointer(start: e.projection, count: n * e.dim)), grids)
    }

    func normalizedRows(_ x: [Float], dim: Int) -> [Float] {
        var x = x
        let rows = x.count / dim
        x.withUnsafeMutableBufferPointer { l2NormalizeRows($0.baseAddress!, rows: rows, dim: dim) }
        return x
    }

    func testEachLayerIsTheEncodersActivation() throws {
        let n = 5
        for head in [HeadKind.mlp, .linear, .mlpBN] {
            let e = Encoder(architecture: .resnet20, head: head, inChannels: 1, dim: 24, trainable: false, hidden: 40)
            e.initialize(seed: 9)
            let ref = reference(e, n: n)
            // The hidden layer of the mlp head is ReLU(fc.0(features)): some zeros, none negative.
            if let hidden = ref.hidden {
                XCTAssertEqual(head, .mlp)
                XCTAssertTrue(hidden.allSatisfy { $0 >= 0 } && hidden.contains(0) && hidden.contains { $0 > 0 })
            }
            for layer in FeatureLayer.allCases {
                guard head == .mlp || layer != .hidden else {
                    XCTAssertThrowsError(try FeatureExtractor(architecture: .resnet20, head: head, inChannels: 1, dim: 24,
                                                              height: 28, width: 28, batch: 4, hidden: 40, layer: layer)) { error in
                        XCTAssertTrue("\(error)".contains("hidden reads the mlp head's hidden layer"), "\(error)")
                    }
                    continue
                }
                // A batch of 4 over 5 images: the partial last batch is covered too.
                let fx = try FeatureExtractor(architecture: .resnet20, head: head, inChannels: 1, dim: 24, height: 28, width: 28,
                                              batch: 4, hidden: 40, layer: layer)
                fx.encoder.copyState(from: e)
                let (want, width) = switch layer {
                case .backbone: (ref.features, 64)
                case .hidden: (ref.hidden!, 64)
                case .projection: (ref.projection, 24)
                case .grid2, .grid3, .grid4: (ref.grids[layer.grid!]!, 64 * layer.grid! * layer.grid!)
                }
                XCTAssertEqual(fx.featureDim, width)
                let got = fx.features(ds, indices: Array(0..<n), normalize: false).array
                let gotNormalized = fx.features(ds, indices: Array(0..<n)).array
                XCTAssertEqual(got.count, n * width)
                // Same kernels on the same inputs; batch 4 vs 5 changes only the GEMM blocking.
                for (a, b) in zip(got, want) { XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(b)), "\(head) \(layer)") }
                for (a, b) in zip(gotNormalized, normalizedRows(want, dim: width)) {
                    XCTAssertEqual(a, b, accuracy: 1e-5, "\(head) \(layer) normalised")
                }
            }
        }
    }

    /// A grid finer than the last map is refused with the sizes in the message (ResNet-20 on
    /// 8-px images ends in a 2x2 map).
    func testGridLargerThanTheMap() throws {
        XCTAssertNoThrow(try FeatureExtractor(architecture: .resnet20, head: .mlp, inChannels: 1, dim: 24, height: 8, width: 8,
                                              batch: 4, layer: .grid2))
        XCTAssertThrowsError(try FeatureExtractor(architecture: .resnet20, head: .mlp, inChannels: 1, dim: 24, height: 8, width: 8,
                                                  batch: 4, layer: .grid3)) { error in
            XCTAssertTrue("\(error)".contains("pools a 3x3 grid; resnet20's last map is 2x2 at 8x8 pixels"), "\(error)")
        }
    }

    /// The monitor's layer is part of the configuration (nil reads as the backbone, as every
    /// configuration written before it) and is checked against the head before the run starts.
    func testConfiguration() throws {
        var c = try TrainConfig.preset("moco-v2")
        XCTAssertNil(c.knnFeatures)
        let old = try JSONDecoder().decode(TrainConfig.self, from: Data(c.jsonString().utf8))
        XCTAssertNil(old.knnFeatures)
        c.knnFeatures = .projection
        XCTAssertEqual(try JSONDecoder().decode(TrainConfig.self, from: Data(c.jsonString().utf8)).knnFeatures, .projection)
        XCTAssertNoThrow(try c.validate(worldSize: 1))
        var v3 = try TrainConfig.preset("moco-v3")
        v3.knnFeatures = .hidden
        XCTAssertThrowsError(try v3.validate(worldSize: 1)) { XCTAssertTrue("\($0)".contains("mlp-bn head has none"), "\($0)") }
    }

    /// A MoCo v3 checkpoint with a projector hidden width other than the default 4·d loads with
    /// its head (`WeightsFile` reads the width from `fc.0.weight` and skips the predictor, which
    /// evaluation does not use), with the query encoder's projector values.
    func testProjectorWidthFromTheFile() throws {
        let dir = NSTemporaryDirectory() + "featurelayer-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var c = try TrainConfig.preset("moco-v3")
        c.data = .synthetic; c.trainSubset = 32; c.batchSize = 16; c.epochs = 1; c.moco.mlpDim = 48
        c.moco.bnSplits = 2; c.knnEvery = 0; c.logEvery = 100; c.saveEvery = 1; c.out = dir
        c.knnFeatures = .projection
        _ = try Trainer(config: c, comm: SingleProcessCommunicator(), say: { _ in }).run()
        let l = try WeightsFile.load(dir + "/checkpoint_0001.safetensors", architecture: nil, head: nil, backboneOnly: false)
        XCTAssertEqual(l.encoder.projector?.hidden, 48)
        XCTAssertEqual(l.encoder.params.entry("fc.0.weight")?.shape, [48, 64])
        XCTAssertNil(l.encoder.predictor)
        let f = try SafeTensorsFile(path: dir + "/checkpoint_0001.safetensors")
        for name in ["fc.0.weight", "fc.1.running_var", "fc.3.weight"] {
            let t = l.encoder.floatState.first { $0.name == name }!
            XCTAssertEqual(Array(UnsafeBufferPointer(start: t.pointer, count: t.shape.reduce(1, *))),
                           try f.floats("encoder_q." + name), name)
        }
    }
}
