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

    /// adaptive_avg_pool2d(map, g).flatten(1) of a map [d, n, h, w], bins written out as
    /// floor(i·h/g) ..< ceil((i+1)·h/g).
    func gridPool(_ map: UnsafePointer<Float>, d: Int, n: Int, h: Int, w: Int, g: Int) -> [Float] {
        var rows = [Float](repeating: 0, count: n * d * g * g)
        for s in 0..<n {
            for c in 0..<d {
                for i in 0..<g {
                    for j in 0..<g {
                        let r0 = Int((Double(i * h) / Double(g)).rounded(.down)), r1 = Int((Double((i + 1) * h) / Double(g)).rounded(.up))
                        let c0 = Int((Double(j * w) / Double(g)).rounded(.down)), c1 = Int((Double((j + 1) * w) / Double(g)).rounded(.up))
                        var sum: Double = 0
                        for r in r0..<r1 { for q in c0..<c1 { sum += Double(map[((c * n + s) * h + r) * w + q]) } }
                        rows[s * d * g * g + (c * g + i) * g + j] = Float(sum / Double((r1 - r0) * (c1 - c0)))
                    }
                }
            }
        }
        return rows
    }

    /// The encoder's own eval-mode forward of `ds`'s first `n` images: pooled features, hidden
    /// layer, projection, and every stage's output map (from a copy planned for training, so
    /// that each block keeps its own output: [width, n, h, w] for stages 1-3).
    func reference(_ e: Encoder, n: Int) -> (features: [Float], hidden: [Float]?, projection: [Float],
                                             stageMaps: [(map: [Float], d: Int, h: Int, w: Int)]) {
        e.plan(batch: n, height: 28, width: 28, backward: false)
        let x = FloatBuffer(count: n * ds.imageSize)
        for i in 0..<n { normalizedImage(ds, index: i, out: x.ptr + i * ds.imageSize) }
        e.forward(x.ptr, training: false, withHead: true)
        let d = e.featureDim
        let (h, w) = e.lastMapSize
        XCTAssertEqual(h, 7); XCTAssertEqual(w, 7)
        let full = Encoder(architecture: .resnet20, head: e.head, inChannels: 1, dim: e.dim, trainable: true, hidden: 40)
        full.copyState(from: e)
        full.plan(batch: n, height: 28, width: 28, backward: true)
        full.forward(x.ptr, training: false, withHead: false)
        // ResNet-20: stages of 3 blocks end at blocks 2, 5, 8 with 16x28x28, 32x14x14, 64x7x7 maps.
        let stageMaps = [(2, 16, 28), (5, 32, 14), (8, 64, 7)].map { b, c, side in
            (Array(UnsafeBufferPointer(start: full.blocks[b].y.ptr, count: c * n * side * side)), c, side, side)
        }
        XCTAssertEqual(stageMaps[2].0, Array(UnsafeBufferPointer(start: e.lastMap, count: d * n * h * w)))
        return (Array(UnsafeBufferPointer(start: e.features, count: n * d)),
                e.headHidden.map { Array(UnsafeBufferPointer(start: $0, count: n * d)) },
                Array(UnsafeBufferPointer(start: e.projection, count: n * e.dim)), stageMaps)
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
            let layers: [FeatureLayer] = [.backbone, .hidden, .projection, .grid2, .grid3, .grid4, FeatureLayer("stage1")!,
                                          FeatureLayer("stage2-grid4")!, FeatureLayer("stage1-grid3")!, FeatureLayer("stage3-grid2")!]
            for layer in layers {
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
                let (want, width): ([Float], Int)
                switch layer.kind {
                case .hidden: (want, width) = (ref.hidden!, 64)
                case .projection: (want, width) = (ref.projection, 24)
                case .pooled where layer == .backbone: (want, width) = (ref.features, 64)
                case .pooled:
                    let m = ref.stageMaps[(layer.stage ?? 3) - 1], g = layer.grid ?? 1
                    want = m.map.withUnsafeBufferPointer { gridPool($0.baseAddress!, d: m.d, n: n, h: m.h, w: m.w, g: g) }
                    width = m.d * g * g
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

    /// A stage's grid finer than that stage's map, and a stage the encoder does not have, are
    /// refused by name (ResNet-20 on 28-px images: stage 2 ends in 14x14).
    func testStageLayers() throws {
        XCTAssertNoThrow(try FeatureExtractor(architecture: .resnet20, head: .mlp, inChannels: 1, dim: 24, height: 28, width: 28,
                                              batch: 4, layer: FeatureLayer("stage2-grid14")!))
        XCTAssertThrowsError(try FeatureExtractor(architecture: .resnet20, head: .mlp, inChannels: 1, dim: 24, height: 28, width: 28,
                                                  batch: 4, layer: FeatureLayer("stage2-grid15")!)) { error in
            XCTAssertTrue("\(error)".contains("pools a 15x15 grid; resnet20's stage 2's map is 14x14 at 28x28 pixels"), "\(error)")
        }
        XCTAssertThrowsError(try FeatureExtractor(architecture: .resnet20, head: .mlp, inChannels: 1, dim: 24, height: 28, width: 28,
                                                  batch: 4, layer: FeatureLayer("stage4")!)) { error in
            XCTAssertTrue("\(error)".contains("stage4: the encoder has 3 stages (stage1 to stage3)"), "\(error)")
        }
        // Widths: a stage's channels times the grid's cells; ResNet-18 has a fourth stage.
        XCTAssertEqual(try FeatureLayer("stage2-grid4")!.width(architecture: .resnet20, head: .mlp, dim: 128), 512)
        XCTAssertEqual(try FeatureLayer("stage1")!.width(architecture: .resnet20x2, head: .mlp, dim: 128), 32)
        XCTAssertEqual(try FeatureLayer("stage4-grid2")!.width(architecture: .resnet18, head: .mlp, dim: 128), 2048)
        XCTAssertEqual(try FeatureLayer.grid4.width(architecture: .resnet18, head: .mlp, dim: 128), 8192)
    }

    /// The string forms: each layer prints as it parses; malformed names are refused.
    func testNames() throws {
        for text in ["backbone", "hidden", "projection", "grid2", "grid4", "grid7", "stage1", "stage2-grid4", "stage3-grid2", "stage10-grid12"] {
            XCTAssertEqual(FeatureLayer(text)?.description, text)
        }
        XCTAssertEqual(FeatureLayer("grid4"), .grid4)
        XCTAssertEqual(FeatureLayer("stage2-grid4"), .pooled(stage: 2, grid: 4))
        XCTAssertEqual(FeatureLayer.pooled(stage: 2, grid: 1).description, "stage2")
        for bad in ["", "grid", "grid1", "grid0", "grid04", "grid-4", "grid4x", "stage", "stage0", "stage2-", "stage2grid4",
                    "stage2-grid1", "stage-1", "stage2-hidden", "Backbone", "grid 4", "stage２"] {
            XCTAssertNil(FeatureLayer(bad), bad)
        }
        // In a configuration file: a string; a bad one is refused with the forms.
        var c = try TrainConfig.preset("moco-v2")
        c.knnFeatures = FeatureSpec(FeatureLayer("stage2-grid4")!)
        let json = c.jsonString()
        XCTAssertTrue(json.contains("\"knnFeatures\" : \"stage2-grid4\""), json)
        XCTAssertEqual(try JSONDecoder().decode(TrainConfig.self, from: Data(json.utf8)).knnFeatures, FeatureSpec("stage2-grid4"))
        let combined = json.replacingOccurrences(of: "\"stage2-grid4\"", with: "\"stage2-grid7+backbone@0.5\"")
        XCTAssertEqual(try JSONDecoder().decode(TrainConfig.self, from: Data(combined.utf8)).knnFeatures?.description,
                       "stage2-grid7+backbone@0.5")
        let bad = json.replacingOccurrences(of: "stage2-grid4", with: "stage2-grid")
        XCTAssertThrowsError(try JSONDecoder().decode(TrainConfig.self, from: Data(bad.utf8))) { error in
            XCTAssertTrue("\(error)".contains("feature layer \"stage2-grid\""), "\(error)")
        }
    }

    /// Layers read together (`FeatureSpec`): the rows are each part of the encoder's own
    /// activations (the reference above), normalised, weighted and concatenated, then normalised
    /// as a whole, so that a dot product of two rows is the weighted mean of the parts' cosines;
    /// unnormalised (the linear probe) they are the parts' raw rows side by side.
    func testCombinedLayers() throws {
        let n = 5
        let e = Encoder(architecture: .resnet20, head: .mlp, inChannels: 1, dim: 24, trainable: false, hidden: 40)
        e.initialize(seed: 11)
        let ref = reference(e, n: n)
        let spec = try XCTUnwrap(FeatureSpec("stage2-grid4+backbone@0.5+stage1-grid2@2+projection@0.25"))
        // Each part's raw rows [n, width] and weight, computed apart from FeatureExtractor.
        let s2 = ref.stageMaps[1], s1 = ref.stageMaps[0]
        let raw: [([Float], Int, Float)] = [
            (s2.map.withUnsafeBufferPointer { gridPool($0.baseAddress!, d: 32, n: n, h: 14, w: 14, g: 4) }, 512, 1),
            (ref.features, 64, 0.5),
            (s1.map.withUnsafeBufferPointer { gridPool($0.baseAddress!, d: 16, n: n, h: 28, w: 28, g: 2) }, 64, 2),
            (ref.projection, 24, 0.25)]
        let fx = try FeatureExtractor(architecture: .resnet20, head: .mlp, inChannels: 1, dim: 24, height: 28, width: 28,
                                      batch: 4, hidden: 40, features: spec)
        fx.encoder.copyState(from: e)
        let d = raw.reduce(0) { $0 + $1.1 }
        XCTAssertEqual(fx.featureDim, d)
        XCTAssertEqual(try spec.width(architecture: .resnet20, head: .mlp, dim: 24), d)
        let got = fx.features(ds, indices: Array(0..<n), normalize: false).array
        let gotNormalized = fx.features(ds, indices: Array(0..<n)).array
        var want: [Float] = [], wantNormalized: [Float] = []
        for r in 0..<n {
            var row: [Float] = []
            for (rows, w, weight) in raw {
                let part = Array(rows[(r * w)..<((r + 1) * w)])
                want += part
                row += normalizedRows(part, dim: w).map { $0 * weight }
            }
            wantNormalized += normalizedRows(row, dim: d)
        }
        for (a, b) in zip(got, want) { XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(b)), "raw") }
        for (a, b) in zip(gotNormalized, wantNormalized) { XCTAssertEqual(a, b, accuracy: 1e-5, "normalised") }
        // The similarity of two rows: Σ w² cos_p / Σ w², in Double from the raw parts.
        func cosine(_ x: ArraySlice<Float>, _ y: ArraySlice<Float>) -> Double {
            var xy = 0.0, xx = 0.0, yy = 0.0
            for (a, b) in zip(x, y) { xy += Double(a) * Double(b); xx += Double(a * a); yy += Double(b * b) }
            return xy / (xx * yy).squareRoot()
        }
        for (a, b) in [(0, 1), (2, 4)] {
            var num = 0.0, den = 0.0
            for (rows, w, weight) in raw {
                let ww = Double(weight * weight)
                num += ww * cosine(rows[(a * w)..<((a + 1) * w)], rows[(b * w)..<((b + 1) * w)]); den += ww
            }
            var dot = 0.0
            for i in 0..<d { dot += Double(gotNormalized[a * d + i]) * Double(gotNormalized[b * d + i]) }
            XCTAssertEqual(dot, num / den, accuracy: 1e-5, "rows \(a), \(b)")
        }
        // One part alone is that layer, bit for bit.
        let alone = try FeatureExtractor(architecture: .resnet20, head: .mlp, inChannels: 1, dim: 24, height: 28, width: 28,
                                         batch: 4, hidden: 40, layer: FeatureLayer("stage2-grid4")!)
        let single = try FeatureExtractor(architecture: .resnet20, head: .mlp, inChannels: 1, dim: 24, height: 28, width: 28,
                                          batch: 4, hidden: 40, features: FeatureSpec("stage2-grid4")!)
        alone.encoder.copyState(from: e); single.encoder.copyState(from: e)
        XCTAssertEqual(alone.features(ds, indices: Array(0..<n)).array, single.features(ds, indices: Array(0..<n)).array)
        // A part the encoder lacks is refused by name, as for one layer.
        XCTAssertThrowsError(try FeatureExtractor(architecture: .resnet20, head: .linear, inChannels: 1, dim: 24, height: 28,
                                                  width: 28, batch: 4, features: FeatureSpec("stage2+hidden")!)) { error in
            XCTAssertTrue("\(error)".contains("hidden reads the mlp head's hidden layer"), "\(error)")
        }
        XCTAssertThrowsError(try FeatureExtractor(architecture: .resnet20, head: .mlp, inChannels: 1, dim: 24, height: 28,
                                                  width: 28, batch: 4, features: FeatureSpec("backbone+stage2-grid15")!)) { error in
            XCTAssertTrue("\(error)".contains("stage2-grid15 pools a 15x15 grid"), "\(error)")
        }
    }

    /// The combinations' string forms: each prints as it parses (weights in their shortest
    /// form); a layer named twice, a weight on a lone layer, or a weight that is not a positive
    /// finite number is refused.
    func testCombinedNames() throws {
        for text in ["backbone", "stage2-grid7+backbone@0.5", "stage1+stage2+stage3", "grid4@2+projection@0.25+hidden"] {
            XCTAssertEqual(FeatureSpec(text)?.description, text)
        }
        XCTAssertEqual(FeatureSpec("stage2-grid7+backbone@1")?.description, "stage2-grid7+backbone")
        XCTAssertEqual(FeatureSpec("stage2-grid7+backbone@.5"), FeatureSpec("stage2-grid7+backbone@0.5"))
        XCTAssertEqual(FeatureSpec("stage2-grid4"), FeatureSpec(FeatureLayer("stage2-grid4")!))
        XCTAssertEqual(FeatureSpec("stage2-grid7+backbone@0.5")?.parts.map(\.weight), [1, 0.5])
        XCTAssertTrue(FeatureSpec("stage2+projection")!.needsHead)
        XCTAssertFalse(FeatureSpec("stage2+backbone")!.needsHead)
        for bad in ["", "+", "stage2+", "+stage2", "stage2++backbone", "stage2+stage2", "grid4+stage3-grid4@2+grid4",
                    "backbone@0.5", "stage2@1+backbone@0", "stage2+backbone@-1", "stage2+backbone@nan", "stage2+backbone@inf",
                    "stage2+backbone@", "stage2+backbone@0.5@1", "stage2+backbone@x", "stage2 + backbone", "stage2+grid1"] {
            XCTAssertNil(FeatureSpec(bad), bad)
        }
    }

    /// `moco knn --held-out N`'s split: `suffix(N)` is the last N images, and with `prefix` it
    /// covers the set once.
    func testHeldOutSplit() {
        let n = ds.count, size = ds.imageSize
        let head = ds.prefix(n - 5), tail = ds.suffix(5)
        XCTAssertEqual(tail.count, 5)
        XCTAssertEqual(head.labels + tail.labels, ds.labels)
        XCTAssertEqual(head.pixels + tail.pixels, ds.pixels)
        XCTAssertEqual(Array(tail.pixels.prefix(size)), Array(ds.pixels[(n - 5) * size ..< (n - 4) * size]))
        XCTAssertEqual(tail.name, ds.name + "[\(n - 5):]")
        XCTAssertEqual(tail.mean, ds.mean)
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
