import XCTest
import MoCoLayers
import MoCoData
import MoCoOptim
@testable import MoCo

/// `moco train --config FILE` in the library: a saved configuration reproduces itself over any
/// preset, a partial one keeps the preset's other values, and an unknown key or a wrong type is
/// an error naming its key path (the command line's part: CLITests, DistributedTrainingTests).
final class TrainConfigFileTests: XCTestCase {
    func file(_ json: String) throws -> TrainConfigFile { try TrainConfigFile(bytes: Array(json.utf8), name: "f.json") }

    func errorOf(_ json: String, over base: TrainConfig = TrainConfig.preset(.mocoV2)) -> String {
        do { _ = try file(json).decode(over: base); return "no error" } catch { return "\(error)" }
    }

    /// A configuration that differs from every preset in many places, saved as config.json
    /// does it, decodes to itself whatever preset it is laid over (it sets every value; only an
    /// optional value that is unset, absent from the file, comes from the base, which is why
    /// `moco train` lays a file over the preset the file names).
    func testSavedConfigurationReproducesItself() throws {
        var c = TrainConfig.preset(.mocoV3)
        c.epochs = 7; c.batchSize = 96; c.lr = 0.123456789; c.seed = UInt64.max - 3
        c.schedule = .step(milestones: [2, 5]); c.warmupEpochs = 0.5
        c.moco.temperature = 0.1; c.moco.mlpDim = 100; c.moco.bucketFloats = 1234; c.moco.symmetric = false
        c.dataDir = "/d"; c.data = .cifar10; c.augment.hue = 0.05; c.augment.ratioMax = 4.0 / 3.0
        c.engine = EngineConfig(threads: 3, conv: .winograd2)
        c.out = "runs/x"
        let saved = c.jsonString()
        for base in TrainConfig.Preset.allCases.map(TrainConfig.preset) {
            XCTAssertEqual(try file(saved).decode(over: base), c, "over \(base.preset)")
        }
        // Unset optionals (moco-v2 has no mlpDim, no dataDir) over the preset the file names.
        var v2 = TrainConfig.preset(.mocoV2)
        v2.epochs = 2; v2.moco.queueSize = 32
        XCTAssertEqual(try file(v2.jsonString()).decode(over: TrainConfig.preset(.mocoV2)), v2)
    }

    /// A partial file: its keys replace the base's (nested objects key by key), the rest stays.
    func testPartialFileKeepsTheBase() throws {
        let base = TrainConfig.preset(.mocoV1)
        let c = try file(#"{"epochs": 3, "moco": {"temperature": 0.5}, "schedule": {"cosine": {}}, "augment": {"blurProb": 0.25}}"#)
            .decode(over: base)
        var expected = base
        expected.epochs = 3; expected.moco.temperature = 0.5; expected.schedule = .cosine; expected.augment.blurProb = 0.25
        XCTAssertEqual(c, expected)
        // An explicit null clears an optional setting; an empty file is the base.
        var v3 = TrainConfig.preset(.mocoV3)
        XCTAssertEqual(try file(#"{"moco": {"mlpDim": null}}"#).decode(over: v3).moco.mlpDim, nil)
        v3.dataDir = "/x"
        XCTAssertEqual(try file("{}").decode(over: v3), v3)
        XCTAssertEqual(try file(#"{"preset": "instdisc"}"#).preset(), "instdisc")
        XCTAssertTrue(try file(#"{"out": "o"}"#).sets("out"))
        XCTAssertFalse(try file(#"{"moco": {"out": "o"}}"#).sets("out"))
    }

    func testUnknownKeysAreNamedAtEveryDepth() {
        XCTAssertTrue(errorOf(#"{"epochz": 3}"#).contains("unknown key epochz"), errorOf(#"{"epochz": 3}"#))
        let nested = errorOf(#"{"moco": {"temprature": 0.2}, "augment": {"blurProb": 0.1, "blur": 1}, "engine": {"thread": 2}}"#)
        XCTAssertTrue(nested.contains("unknown keys augment.blur, engine.thread, moco.temprature"), nested)
        let inEnum = errorOf(#"{"schedule": {"step": {"milestones": [1], "gamma": 0.1}}}"#)
        XCTAssertTrue(inEnum.contains("schedule.step.gamma"), inEnum)
        XCTAssertTrue(errorOf(#"{"schedule": {"cosin": {}}}"#).contains("schedule"), errorOf(#"{"schedule": {"cosin": {}}}"#))
        XCTAssertTrue(errorOf(#"{"epochz": 3}"#).hasPrefix("--config f.json: "))
    }

    func testWrongTypesAreNamed() {
        let cases: [(String, String)] = [
            (#"{"epochs": "3"}"#, #"epochs: expected an integer, got the string "3""#),
            (#"{"epochs": 2.5}"#, "epochs: expected an integer in"),
            (#"{"moco": {"temperature": "0.2"}}"#, #"moco.temperature: expected a number, got the string "0.2""#),
            (#"{"moco": {"symmetric": 1}}"#, "moco.symmetric: expected true or false, got the integer 1"),
            (#"{"moco": 5}"#, "moco: expected an object, got the integer 5"),
            (#"{"seed": -1}"#, "seed: expected an integer in 0...18446744073709551615"),
            (#"{"schedule": {"step": {"milestones": [1, "x"]}}}"#, "schedule.step.milestones[1]: expected an integer"),
            (#"{"schedule": "cosine"}"#, "schedule: expected an object"),
            (#"{"moco": {"architecture": "resnet50"}}"#, "moco.architecture: the string \"resnet50\" is not one of resnet20, resnet20-x2, resnet20-x4, resnet18"),
            (#"{"engine": {"conv": 3}}"#, "engine.conv: expected a string, got the integer 3"),
            (#"{"dataDir": 7}"#, "dataDir: expected a string"),
        ]
        for (json, expected) in cases {
            let e = errorOf(json)
            XCTAssertTrue(e.contains(expected), "\(json): \(e)")
        }
    }

    func testNotAConfigurationObject() {
        XCTAssertThrowsError(try file(#"{"epochs": 3,"#)) { XCTAssertTrue("\($0)".hasPrefix("--config f.json: not valid JSON"), "\($0)") }
        XCTAssertThrowsError(try file("[1, 2]")) { XCTAssertTrue("\($0)".contains("expected a JSON object"), "\($0)") }
        XCTAssertThrowsError(try file(#"{"preset": 2}"#).preset()) { XCTAssertTrue("\($0)".contains("preset: expected a string"), "\($0)") }
        XCTAssertThrowsError(try TrainConfigFile.read(path: "/nonexistent/c.json")) {
            XCTAssertEqual("\($0)", "--config /nonexistent/c.json: no such file")
        }
        XCTAssertThrowsError(try TrainConfigFile.read(path: "/tmp")) { XCTAssertTrue("\($0)".contains("is a directory"), "\($0)") }
    }
}
