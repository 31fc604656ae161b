import XCTest
import MoCoLayers
import MoCoData
@testable import MoCo

/// The run configuration: one name per value, JSON round trip, and configurations written by
/// earlier versions (flat layout: `mocoM`, `mocoT`, `wd`, ...) still read, so their checkpoints
/// resume.
final class TrainConfigTests: XCTestCase {
    /// `config.json` as `moco train` wrote it before the step's settings were nested.
    static let flatJSON = #"""
{
  "arch" : "resnet20",
  "augment" : {
    "blurProb" : 0.5,
    "blurSigmaMax" : 1,
    "blurSigmaMin" : 0.1,
    "brightness" : 0.4,
    "contrast" : 0.4,
    "cropScaleMax" : 1,
    "cropScaleMin" : 0.2,
    "flipProb" : 0.5,
    "grayscaleProb" : 0.2,
    "hue" : 0.1,
    "jitterProb" : 0.8,
    "ratioMax" : 1.3333334,
    "ratioMin" : 0.75,
    "saturation" : 0.4
  },
  "batchSize" : 256,
  "bnSplits" : 8,
  "checkConsistency" : 0,
  "conv" : "im2col",
  "data" : "synthetic",
  "dim" : 128,
  "epochs" : 30,
  "head" : "mlp",
  "knnEvery" : 1,
  "knnK" : 200,
  "knnT" : 0.1,
  "logEvery" : 10,
  "lr" : 0.06,
  "mocoM" : 0.999,
  "mocoT" : 0.07,
  "out" : "runs\/old",
  "preset" : "moco-v2",
  "queueSize" : 1024,
  "saveEvery" : 1,
  "schedule" : {
    "cosine" : {

    }
  },
  "seed" : 0,
  "sgdMomentum" : 0.9,
  "shuffleBN" : true,
  "symmetric" : false,
  "syncBN" : false,
  "threads" : 2,
  "trainSubset" : 0,
  "warmupEpochs" : 0,
  "wd" : 0.0001
}
"""#

    func testFlatConfigurationOfEarlierRunsIsRead() throws {
        let c = try TrainConfig.from(json: Self.flatJSON)
        XCTAssertEqual(c.moco.momentum, 0.999)
        XCTAssertEqual(c.moco.temperature, 0.07)
        XCTAssertEqual(c.moco.weightDecay, 1e-4)
        XCTAssertEqual(c.moco.queueSize, 1024)
        XCTAssertEqual(c.moco.bnSplits, 8)
        XCTAssertEqual(c.moco.architecture, .resnet20)
        XCTAssertEqual(c.moco.head, .mlp)
        XCTAssertEqual(c.engine.conv, .im2col)
        XCTAssertEqual(c.engine.threads, 2)
        XCTAssertEqual(c.data, .synthetic)
        XCTAssertEqual(c.schedule, .cosine)
        XCTAssertEqual(c.out, "runs/old")
        XCTAssertEqual(c.augment, .fashionMNISTV2)
        // Without `conv` (runs before it existed): the default algorithm.
        let noConv = Self.flatJSON.replacingOccurrences(of: #""conv" : "im2col","#, with: "")
        XCTAssertEqual(try TrainConfig.from(json: noConv).engine.conv, EngineConfig().conv)
        // Runs of then started from torchvision's initialisation, whatever today's default.
        XCTAssertEqual(c.moco.initialization, .torchvision)
        // And computed the weight gradient with im2col.
        XCTAssertEqual(c.engine.weightGrad, .im2col)
    }

    /// An engine setting added after runs existed: `fresh` in a new configuration (and written
    /// there), both values read back, and an engine section without the key (written before it
    /// existed) read as `legacy`, what those runs used, so that they resume exactly.
    func checkEngineKey<A: Equatable & RawRepresentable>(_ key: String, _ path: WritableKeyPath<EngineConfig, A>,
                                                         fresh: A, legacy: A) throws where A.RawValue == String {
        var c = TrainConfig.preset(.fashionMNIST)
        XCTAssertEqual(c.engine[keyPath: path], fresh)
        XCTAssertTrue(c.jsonString().contains("\"\(key)\" : \"\(fresh.rawValue)\""), "\(key) is written")
        XCTAssertEqual(try TrainConfig.from(json: c.jsonString()).engine[keyPath: path], fresh)
        c.engine[keyPath: path] = legacy
        XCTAssertEqual(try TrainConfig.from(json: c.jsonString()).engine[keyPath: path], legacy)
        c.engine[keyPath: path] = fresh
        let entry = "\"\(key)\":\"\(fresh.rawValue)\""
        let unrecorded = c.jsonString(pretty: false).replacingOccurrences(of: entry + ",", with: "")
            .replacingOccurrences(of: "," + entry, with: "")
        XCTAssertFalse(unrecorded.contains(key))
        XCTAssertEqual(try TrainConfig.from(json: unrecorded).engine[keyPath: path], legacy)
    }

    /// `--conv-dw`: the Winograd layers' weight gradient in the Winograd domain; im2col before.
    func testWeightGradientDefaultAndUnrecorded() throws {
        try checkEngineKey("weightGrad", \.weightGrad, fresh: WeightGradAlgorithm.winograd, legacy: .im2col)
    }

    /// `--conv-strided`: the strided convolutions' forward on the direct kernel; im2col before,
    /// also in the flat configurations of the first releases.
    func testStridedDefaultAndUnrecorded() throws {
        try checkEngineKey("strided", \.strided, fresh: StridedConvAlgorithm.direct, legacy: .im2col)
        XCTAssertEqual(try TrainConfig.from(json: Self.flatJSON).engine.strided, .im2col)
    }

    /// `--init`: every preset starts from `InitScheme.default` (PyTorch's `nn.Conv2d` init, chosen
    /// in docs/results.md); a nested configuration that does not record a scheme (written before
    /// `moco.initialization` existed) reads as torchvision's, which every run then used; and a
    /// checkpoint resumes only under the scheme it started from, so that the configuration saved
    /// with the continuation still says how the run began.
    func testInitialisationDefaultUnrecordedAndResume() throws {
        XCTAssertEqual(InitScheme.default, .pytorch)
        for p in TrainConfig.Preset.allCases {
            XCTAssertEqual(TrainConfig.preset(p).moco.initialization, .pytorch, p.rawValue)
        }
        var c = TrainConfig.preset(.mocoV2)
        XCTAssertTrue(c.jsonString().contains(#""initialization" : "pytorch""#), "the scheme is written")
        c.moco.initialization = .torchvision
        XCTAssertEqual(try TrainConfig.from(json: c.jsonString()).moco.initialization, .torchvision)
        let unrecorded = c.jsonString(pretty: false).replacingOccurrences(of: #""initialization":"torchvision","#, with: "")
        XCTAssertFalse(unrecorded.contains("initialization"))
        let old = try TrainConfig.from(json: unrecorded)
        XCTAssertEqual(old.moco.initialization, .torchvision)
        XCTAssertEqual(old, c)
        let now = TrainConfig.preset(.mocoV2)
        XCTAssertEqual(now.resumeMismatches(c), ["init: checkpoint torchvision, now pytorch"])
        XCTAssertEqual(c.resumeMismatches(c), [])
    }

    /// `--preset fashion-mnist` is the v2 preset with exactly the flags of the time-to-accuracy
    /// run behind it (docs/results.md): `--moco-t 0.1 --jitter-strength 1 --epochs 16`.
    func testFashionMNISTPresetIsTheMeasuredRecipe() throws {
        var v2 = TrainConfig.preset(.mocoV2)
        v2.moco.temperature = 0.1
        v2.augment.setJitterStrength(1)
        v2.epochs = 16
        var recipe = try TrainConfig.preset("fashion-mnist")
        XCTAssertEqual(recipe.preset, "fashion-mnist")
        recipe.preset = v2.preset
        XCTAssertEqual(recipe, v2)
        XCTAssertEqual(recipe.augment.brightness, 0.8)
        XCTAssertEqual(recipe.augment.contrast, 0.8)
        XCTAssertEqual(recipe.augment.blurSigmaMax, 1)
        XCTAssertEqual(try TrainConfig.from(json: TrainConfig.preset(.fashionMNIST).jsonString()), TrainConfig.preset(.fashionMNIST))
    }

    func testRoundTripAndPresets() throws {
        var c = TrainConfig.preset(.mocoV1)
        c.moco.symmetric = true; c.engine = EngineConfig(threads: 3, conv: .winograd2); c.schedule = .step(milestones: [3, 7])
        XCTAssertEqual(try TrainConfig.from(json: c.jsonString()), c)
        XCTAssertEqual(try TrainConfig.from(json: c.jsonString(pretty: false)), c)
        XCTAssertEqual(c.moco.head, .linear)
        XCTAssertEqual(TrainConfig.preset(.mocoV2).moco.bnSplits, 8)
        XCTAssertThrowsError(try TrainConfig.preset("moco-v9")) { XCTAssertTrue("\($0)".contains("moco-v2 or moco-v1"), "\($0)") }
        XCTAssertThrowsError(try TrainConfig.from(json: "{\"preset\": 1}")) { XCTAssertTrue("\($0)".contains("cannot read the configuration")) }
    }
}
