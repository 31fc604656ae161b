import XCTest
import Foundation
import MoCoTestSupport
import SafeTensors

/// The `moco` executable end to end: the embedded default job, errors on bad input, and the
/// weights commands.
final class CLITests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("moco-cli-\(getpid())-\(name.hashValue)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func moco(_ args: [String], timeout: Double = 300, env extra: [String: String] = [:]) throws -> ProcessResult {
        guard let exe = builtExecutable("moco") else {
            XCTFail("the moco executable is not built (swift build)"); throw XCTSkip("no moco")
        }
        var env = mpiEnvironment
        for (k, v) in extra { env[k] = v }
        return try runProcess(exe, args, environment: env, timeout: timeout)
    }

    /// The short default job of the README on the built-in synthetic set: trains, logs,
    /// evaluates and checkpoints.
    func testEmbeddedDefaultJobRunsEndToEnd() throws {
        let out = tmp.appendingPathComponent("run").path
        let r = try moco(["train", "--preset", "moco-v2", "--data", "synthetic", "--epochs", "1", "--train-subset", "256",
                          "--batch-size", "32", "--queue-size", "128", "--log-every", "4", "--out", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("kNN top-1"), r.stdout)
        XCTAssertTrue(r.stdout.contains("\"preset\" : \"moco-v2\""), "effective configuration printed")
        for f in ["config.json", "metrics.jsonl", "checkpoint_0001.safetensors"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/" + f), f)
        }
        let events = try FileManager.default.contentsOfDirectory(atPath: out + "/tb")
        XCTAssertEqual(events.count, 1, "\(events)")
        XCTAssertTrue(events.allSatisfy { $0.hasPrefix("events.out.tfevents.") }, "\(events)")
        let metrics = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8)
        let lines = metrics.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        XCTAssertTrue(lines.contains { $0["type"] as? String == "train" && $0["loss"] != nil && $0["images_per_s"] != nil })
        XCTAssertTrue(lines.contains { $0["type"] as? String == "knn" && $0["knn_top1"] != nil })
        // The checkpoint holds what resuming needs.
        let ck = try SafeTensorsFile(path: out + "/checkpoint_0001.safetensors")
        XCTAssertEqual(try ck.shape("queue"), [128, 128])
        XCTAssertEqual(try ck.int64s("queue_ptr"), [Int64(8 * 32 % 128)])
        XCTAssertTrue(ck.has("encoder_k.layer1.0.bn1.running_mean") && ck.has("optimizer.momentum_buffer.fc.2.weight"))
        XCTAssertEqual(ck.metadata["epoch"], "1")

        // A second run into the same folder must not overwrite it without --resume.
        let before = try Data(contentsOf: URL(fileURLWithPath: out + "/checkpoint_0001.safetensors"))
        let again = try moco(["train", "--data", "synthetic", "--epochs", "1", "--train-subset", "256", "--batch-size", "32",
                              "--queue-size", "128", "--out", out])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("already holds checkpoints"), again.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out + "/checkpoint_0001.safetensors")), before)
    }

    func testInvalidHyperparametersAreRejected() throws {
        let cases: [([String], String)] = [
            (["--moco-t", "0"], "--moco-t"),
            (["--batch-size", "100", "--bn-splits", "8"], "not divisible by --bn-splits"),
            (["--moco-m", "1.5"], "--moco-m"),
            (["--data", "imagenet"], "'imagenet' is invalid for '--data"),
            (["--preset", "moco-v9"], "'moco-v9' is invalid for '--preset"),
            (["--arch", "resnet50"], "'resnet50' is invalid for '--arch"),
            (["--conv", "fft"], "'fft' is invalid for '--conv"),
            (["--schedule", "step:x"], "'step:x' is invalid for '--schedule"),
            (["--blur-kernel", "4"], "'4' is invalid for '--blur-kernel"),
        ]
        for (args, expect) in cases {
            let r = try moco(["train", "--data", "synthetic", "--out", tmp.appendingPathComponent("bad").path] + args + ["--dry-run"])
            XCTAssertNotEqual(r.status, 0, args.joined(separator: " "))
            XCTAssertTrue(r.stderr.contains(expect), "\(args): \(r.stderr)")
        }
    }

    /// `moco augstats` writes one column per random choice and the dumped views, recording the
    /// configuration it drew them with; `--blur-kernel full` is recorded.
    func testAugStatsWritesTheViewsParameters() throws {
        let out = tmp.appendingPathComponent("aug.json").path
        let r = try moco(["augstats", "--data", "synthetic", "--views", "9", "--dump", "3", "--blur-kernel", "full",
                          "--seed", "4", "--out", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any])
        XCTAssertEqual(obj["views"] as? Int, 9)
        for key in ["top", "left", "height", "width", "flip", "jitter", "jitter_order", "brightness", "contrast", "blur_sigma",
                    "view_mean", "view_std"] {
            XCTAssertEqual((obj[key] as? [Any])?.count, 9, key)
        }
        XCTAssertEqual((obj["histogram"] as? [Int])?.reduce(0, +), 9 * 28 * 28)
        XCTAssertEqual(((obj["dump"] as? [String: Any])?["pixels"] as? [[Double]])?.map(\.count), [784, 784, 784])
        XCTAssertEqual((obj["augment"] as? [String: Any])?["blurKernel"] as? String, "full")
        XCTAssertEqual(obj["seed"] as? Int, 4)
        let tooMany = try moco(["augstats", "--data", "synthetic", "--views", "20000", "--out", out])
        XCTAssertNotEqual(tooMany.status, 0)
        XCTAssertTrue(tooMany.stderr.contains("needs 10000 images; the training set has 6000"), tooMany.stderr)
    }

    /// Every choice-valued flag lists its values in `--help`.
    func testHelpListsChoices() throws {
        let r = try moco(["train", "--help"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let help = r.stdout.replacingOccurrences(of: "\n", with: " ").split(separator: " ").joined(separator: " ")
        for values in ["(values: moco-v2, moco-v1, instdisc, moco-v3, fashion-mnist)", "(values: moco, memory-bank, end-to-end, moco-v3)", "(values: sgd, lars)", "(values: infonce, nce)",
                       "(values: resnet20, resnet20-x2, resnet20-x4, resnet18)", "(values: linear, mlp, mlp-bn)",
                       "(values: fashion-mnist, mnist, cifar10, synthetic, folder)", "(values: im2col, winograd2, winograd4)",
                       "(values: cosine, step:E1,E2)"] {
            XCTAssertTrue(help.contains(values), "\(values) in:\n\(r.stdout)")
        }
        // The feature layers are an open family (gridG, stageS-gridG): the help gives the forms.
        XCTAssertTrue(help.contains("--knn-features <knn-features> kNN monitor features: backbone (pooled, default), gridG"), r.stdout)
        XCTAssertTrue(help.contains("stageS or stageS-gridG (the output of stage S pooled, e.g. stage2-grid4)"), r.stdout)
    }

    /// `--preset instdisc` is the memory bank with NCE; a mechanism is recorded in the
    /// configuration, and a combination without meaning is refused by name.
    func testMechanismFlags() throws {
        let inst = try moco(["train", "--preset", "instdisc", "--data", "synthetic", "--out", tmp.appendingPathComponent("i").path, "--dry-run"])
        XCTAssertEqual(inst.status, 0, inst.stderr)
        for field in ["\"mechanism\" : \"memory-bank\"", "\"loss\" : \"nce\"", "\"bankMomentum\" : 0.5", "\"head\" : \"linear\""] {
            XCTAssertTrue(inst.stdout.contains(field), "\(field) in\n\(inst.stdout)")
        }
        let v3 = try moco(["train", "--preset", "moco-v3", "--data", "synthetic", "--out", tmp.appendingPathComponent("v3").path, "--dry-run"])
        XCTAssertEqual(v3.status, 0, v3.stderr)
        for field in ["\"mechanism\" : \"moco-v3\"", "\"optimizer\" : \"lars\"", "\"momentumCosine\" : true", "\"head\" : \"mlp-bn\""] {
            XCTAssertTrue(v3.stdout.contains(field), "\(field) in\n\(v3.stdout)")
        }
        let bad = try moco(["train", "--mechanism", "end-to-end", "--loss", "nce", "--data", "synthetic",
                            "--out", tmp.appendingPathComponent("b").path, "--dry-run"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--loss nce needs a fixed noise distribution"), bad.stderr)
        let typo = try moco(["train", "--mechanism", "memorybank", "--dry-run"])
        XCTAssertNotEqual(typo.status, 0)
        XCTAssertTrue(typo.stderr.contains("memory-bank"), typo.stderr)
    }

    /// `moco train --dry-run` on synthetic data into a fresh directory: the printed configuration.
    func dryRun(_ name: String, _ flags: [String] = [], env: [String: String] = [:]) throws -> ProcessResult {
        try moco(["train", "--data", "synthetic", "--out", tmp.appendingPathComponent(name).path, "--dry-run"] + flags, env: env)
    }

    /// The convolution algorithm: recorded in the configuration; a misspelt MOCO_CONV is an
    /// error, not a silent fallback.
    func testConvAlgorithmIsRecordedAndValidated() throws {
        let ok = try dryRun("c", env: ["MOCO_CONV": "winograd2"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.contains("\"conv\" : \"winograd2\""), ok.stdout)
        let bad = try dryRun("d", env: ["MOCO_CONV": "winograd3"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("unknown MOCO_CONV 'winograd3'"), bad.stderr)
    }

    /// The strided convolutions' algorithm: `--conv-strided` over MOCO_CONV_STRIDED over the
    /// default (direct), recorded in the configuration; a misspelt value is an error.
    func testStridedConvIsRecordedAndValidated() throws {
        for (name, flags, env, expected) in [("s1", [], [:], "direct"), ("s2", [], ["MOCO_CONV_STRIDED": "im2col"], "im2col"),
                                             ("s3", ["--conv-strided", "direct"], ["MOCO_CONV_STRIDED": "im2col"], "direct")] {
            let r = try dryRun(name, flags, env: env)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("\"strided\" : \"\(expected)\""), "\(name): \(r.stdout)")
        }
        let bad = try dryRun("s4", env: ["MOCO_CONV_STRIDED": "winograd"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("unknown MOCO_CONV_STRIDED 'winograd' (choose im2col, direct)"), bad.stderr)
        let badFlag = try moco(["bench", "ops", "--conv-strided", "fast"])
        XCTAssertNotEqual(badFlag.status, 0)
        XCTAssertTrue(badFlag.stderr.contains("fast"), badFlag.stderr)
    }

    func testCorruptCheckpointIsRefusedAndKept() throws {
        let out = tmp.appendingPathComponent("corrupt").path
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let path = out + "/checkpoint_0001.safetensors"
        let junk = Data([0x10, 0, 0, 0, 0, 0, 0, 0] + Array("{\"queue\": 1".utf8))
        try junk.write(to: URL(fileURLWithPath: path))
        let r = try moco(["train", "--data", "synthetic", "--epochs", "2", "--train-subset", "64", "--batch-size", "16",
                          "--queue-size", "32", "--out", out, "--resume", "auto"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("checkpoint_0001.safetensors") || r.stderr.contains("auto"), r.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), junk, "the checkpoint must be left as it was")
    }

    /// `moco init` then `moco embed` in a release or debug build: features and projection of the
    /// right shapes; eval mode makes them independent of the batch they are computed in.
    func testInitThenEmbed() throws {
        let w = tmp.appendingPathComponent("w.safetensors").path
        let x = tmp.appendingPathComponent("x.safetensors").path
        let y = tmp.appendingPathComponent("y.safetensors").path
        let y1 = tmp.appendingPathComponent("y1.safetensors").path
        var r = try moco(["init", "--arch", "resnet20", "--head", "mlp", "--in-channels", "1", "--seed", "3", "--output", w])
        XCTAssertEqual(r.status, 0, r.stderr)
        var writer = SafeTensorsWriter()
        writer.add("images", shape: [5, 1, 12, 12], floats: (0..<(5 * 144)).map { Float(($0 * 37) % 101) / 50 - 1 })
        try writer.write(to: x)
        r = try moco(["embed", "--arch", "resnet20", "--weights", w, "--input", x, "--output", y])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try moco(["embed", "--weights", w, "--input", x, "--output", y1, "--batch", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let a = try SafeTensorsFile(path: y), b = try SafeTensorsFile(path: y1)
        XCTAssertEqual(try a.shape("features"), [5, 64])
        XCTAssertEqual(try a.shape("projection"), [5, 128])
        let fa = try a.floats("projection"), fb = try b.floats("projection")
        XCTAssertLessThan(zip(fa, fb).map { abs($0 - $1) }.max()!, 1e-5)
        XCTAssertGreaterThan(fa.map { abs($0) }.max()!, 0)
        // Grid features (12 px: a 3x3 last map): a 1x1 grid is the pooled features, a 3x3 grid
        // the map itself, and both independent of the batch; a grid finer than the map is refused.
        let y2 = tmp.appendingPathComponent("y2.safetensors").path
        r = try moco(["embed", "--weights", w, "--input", x, "--output", y2, "--batch", "2", "--grid", "1", "--grid", "3"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let g = try SafeTensorsFile(path: y2)
        XCTAssertEqual(try g.shape("grid3"), [5, 576])
        XCTAssertLessThan(zip(try g.floats("grid1"), try a.floats("features")).map { abs($0 - $1) }.max()!, 1e-5)
        let g3 = try g.floats("grid3"), f = try a.floats("features")
        // Each channel's 9 cells average to the pooled feature.
        for n in 0..<5 {
            for c in 0..<64 {
                let cells = g3[(n * 64 + c) * 9 ..< (n * 64 + c + 1) * 9]
                XCTAssertEqual(cells.reduce(0, +) / 9, f[n * 64 + c], accuracy: 1e-5)
            }
        }
        r = try moco(["embed", "--weights", w, "--input", x, "--output", y2 + ".4", "--grid", "4"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--grid 4: the last map of resnet20 is 3x3 at 12x12 pixels"), r.stderr)
        // A 3-channel input for a 1-channel encoder is refused.
        var w3 = SafeTensorsWriter()
        w3.add("images", shape: [1, 3, 8, 8], floats: [Float](repeating: 0, count: 192))
        try w3.write(to: x)
        r = try moco(["embed", "--weights", w, "--input", x, "--output", y])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("expected [N, 1, H, W]"), r.stderr)
        // Weights of another architecture are refused with the tensor named.
        r = try moco(["embed", "--arch", "resnet18", "--weights", w, "--input", x, "--output", y])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("missing") || r.stderr.contains("shape"), r.stderr)
    }

    /// `moco lincls --wd-grid`: the weight decay is chosen on held-out training images, reported,
    /// and used; a bad --val-fraction or grid value is refused before any work.
    func testLinclsChoosesWeightDecay() throws {
        let common = ["lincls", "--random-init", "--data", "synthetic", "--epochs", "2", "--threads", "1"]
        var r = try moco(common + ["--wd-grid", "0", "0.001", "--val-fraction", "0.2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = r.stdout + r.stderr
        XCTAssertTrue(out.contains("wd 0: held-out top-1"), out)
        XCTAssertTrue(out.contains("wd 0.001: held-out top-1"), out)
        XCTAssertTrue(out.contains("chosen; training on all"), out)
        XCTAssertTrue(out.contains("linear top-1"), out)
        r = try moco(common + ["--wd-grid", "0", "--val-fraction", "1.5"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--val-fraction must be between 0 and 1"), r.stderr)
        r = try moco(common + ["--wd-grid=-1"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--wd-grid: -1.0 is not a weight decay"), r.stderr)
    }

    /// A diverging run stops with a clear error and keeps the last good checkpoint.
    func testNonFiniteLossStopsAndKeepsLastCheckpoint() throws {
        let out = tmp.appendingPathComponent("nan").path
        let common = ["train", "--data", "synthetic", "--train-subset", "64", "--batch-size", "16", "--queue-size", "32",
                      "--epochs", "2", "--knn-every", "0", "--log-every", "1", "--out", out]
        var r = try moco(common + ["--stop-after", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let good = try Data(contentsOf: URL(fileURLWithPath: out + "/checkpoint_0001.safetensors"))
        r = try moco(common + ["--resume", "auto", "--lr", "1e30"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("loss became"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/checkpoint_0002.safetensors"))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out + "/checkpoint_0001.safetensors")), good)
    }

    // MARK: - --config

    /// Two steps of 8 images, with flags away from the defaults (im2col: the fastest algorithm
    /// in a debug build).
    static let tinyRun = ["--data", "synthetic", "--epochs", "1", "--train-subset", "16", "--batch-size", "8",
                          "--queue-size", "16", "--knn-every", "0", "--log-every", "2", "--seed", "5", "--moco-t", "0.15",
                          "--schedule", "step:1", "--bn-splits", "2", "--conv", "im2col"]

    /// The configuration a run printed (`--dry-run`), as an object.
    func printedConfiguration(_ r: ProcessResult) throws -> [String: Any] {
        let text = r.stdout.components(separatedBy: "configuration:\n").last ?? ""
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], r.stdout)
    }

    func jsonObject(_ path: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    /// A run's config.json given back with --config is the same configuration (only --out
    /// differs) and trains to bitwise the same checkpoint; flags given with it override it.
    func testConfigFileReRunsASavedConfiguration() throws {
        let a = tmp.appendingPathComponent("a").path, b = tmp.appendingPathComponent("b").path
        var r = try moco(["train", "--preset", "moco-v1", "--out", a] + Self.tinyRun)
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try moco(["train", "--config", a + "/config.json", "--out", b])
        XCTAssertEqual(r.status, 0, r.stderr)
        var first = try jsonObject(a + "/config.json"), second = try jsonObject(b + "/config.json")
        XCTAssertEqual(first["out"] as? String, a); XCTAssertEqual(second["out"] as? String, b)
        first["out"] = nil; second["out"] = nil
        XCTAssertEqual(NSDictionary(dictionary: first), NSDictionary(dictionary: second))
        XCTAssertEqual((first["moco"] as? [String: Any])?["temperature"] as? Double, 0.15, "the flags of the first run are in it")
        // The same weights, queue and optimizer state, bit for bit (the metadata's config differs in out).
        let ca = try SafeTensorsFile(path: a + "/checkpoint_0001.safetensors")
        let cb = try SafeTensorsFile(path: b + "/checkpoint_0001.safetensors")
        XCTAssertEqual(ca.names, cb.names)
        XCTAssertTrue(ca.names.contains("encoder_q.conv1.weight") && ca.names.contains("queue"))
        for n in ca.names {
            XCTAssertEqual(try ca.withRawBytes(n) { Array($0) }, try cb.withRawBytes(n) { Array($0) }, n)
        }

        // Flags override the file; the rest stays the file's (not the default preset's).
        r = try moco(["train", "--config", a + "/config.json", "--out", b + "2", "--epochs", "3", "--moco-t", "0.3",
                      "--conv", "winograd2", "--threads", "1", "--dry-run"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let o = try printedConfiguration(r)
        XCTAssertEqual(o["epochs"] as? Int, 3)
        XCTAssertEqual((o["moco"] as? [String: Any])?["temperature"] as? Double, 0.3)
        XCTAssertEqual((o["engine"] as? [String: Any])?["conv"] as? String, "winograd2")
        XCTAssertEqual((o["engine"] as? [String: Any])?["threads"] as? Int, 1)
        XCTAssertEqual((o["moco"] as? [String: Any])?["head"] as? String, "linear", "moco-v1's head, from the file")
        XCTAssertEqual((o["moco"] as? [String: Any])?["bnSplits"] as? Int, 2)
        XCTAssertEqual(o["batchSize"] as? Int, 8)
        // Without --out, the file's.
        r = try moco(["train", "--config", a + "/config.json", "--dry-run"])
        XCTAssertEqual(try printedConfiguration(r)["out"] as? String, a)
    }

    /// A user-written file with a few keys: the preset it names supplies the rest.
    func testPartialConfigFileUsesItsPreset() throws {
        let path = tmp.appendingPathComponent("mine.json").path
        try Data(#"{"preset": "instdisc", "epochs": 4, "moco": {"queueSize": 64}}"#.utf8).write(to: URL(fileURLWithPath: path))
        let r = try moco(["train", "--config", path, "--data", "synthetic", "--dry-run"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let o = try printedConfiguration(r), m = o["moco"] as? [String: Any]
        XCTAssertEqual(o["epochs"] as? Int, 4)
        XCTAssertEqual(m?["queueSize"] as? Int, 64)
        XCTAssertEqual(m?["mechanism"] as? String, "memory-bank")
        XCTAssertEqual(m?["loss"] as? String, "nce")
        XCTAssertEqual(o["out"] as? String, "runs/instdisc-synthetic")
        let clash = try moco(["train", "--config", path, "--preset", "moco-v2", "--dry-run"])
        XCTAssertNotEqual(clash.status, 0)
        XCTAssertTrue(clash.stderr.contains("name different presets"), clash.stderr)
    }

    /// Errors name the problem and the key, and exit non-zero.
    func testConfigFileErrors() throws {
        func file(_ name: String, _ text: String) throws -> String {
            let p = tmp.appendingPathComponent(name).path
            try Data(text.utf8).write(to: URL(fileURLWithPath: p))
            return p
        }
        let cases: [(String, String)] = [
            (tmp.appendingPathComponent("missing.json").path, "--config \(tmp.appendingPathComponent("missing.json").path): no such file"),
            (try file("typo.json", #"{"moco": {"temprature": 0.1}}"#), "unknown key moco.temprature"),
            (try file("type.json", #"{"augment": {"blurProb": "high"}}"#), #"augment.blurProb: expected a number, got the string "high""#),
            (try file("json.json", "{\"epochs\": 3"), "not valid JSON"),
            (try file("preset.json", #"{"preset": "moco-v9"}"#), "preset: unknown preset 'moco-v9'"),
            (try file("invalid.json", #"{"moco": {"temperature": 0}}"#), "--moco-t must be positive"),
        ]
        for (path, expected) in cases {
            let r = try moco(["train", "--config", path, "--data", "synthetic", "--out", tmp.appendingPathComponent("o").path, "--dry-run"])
            XCTAssertNotEqual(r.status, 0, path)
            XCTAssertTrue(r.stderr.contains(expected), "\(path): \(r.stderr)")
        }
    }

    func testKnnBaselinesOnSyntheticData() throws {
        let r = try moco(["knn", "--raw-pixels", "--data", "synthetic", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let top1 = obj?["knn_top1"] as? Double ?? -1
        XCTAssertGreaterThan(top1, 15, "raw pixels beat chance (10%) on the synthetic set")
    }

    /// `moco knn --knn-bank N --knn-test M`: the first N training and M test images, as the
    /// trainer's monitor takes them (docs/ablations.md's protocol); a non-positive count is refused.
    func testKnnOnPrefixesOfTheSets() throws {
        let r = try moco(["knn", "--raw-pixels", "--data", "synthetic", "--knn-bank", "40", "--knn-test", "12", "--k", "5", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(obj["test"] as? Int, 12)
        XCTAssertTrue((obj["data"] as? String ?? "").hasSuffix("[:40]"), "\(obj)")
        let all = try moco(["knn", "--raw-pixels", "--data", "synthetic", "--k", "5", "--json"])
        let whole = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(all.stdout.utf8)) as? [String: Any])
        XCTAssertGreaterThan(whole["test"] as? Int ?? 0, 12)
        let bad = try moco(["knn", "--raw-pixels", "--data", "synthetic", "--knn-test", "0"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--knn-test must be positive"), bad.stderr)
    }

    /// `--knn-features` / `--features`: the monitor of a run that reads the head's output beside
    /// a stage's grid and `moco knn --features` of the same on its checkpoint agree to the digit
    /// (same bank, test set and encoder); the hidden layer evaluates too; raw pixels have no layers.
    func testKnnFeatureLayers() throws {
        let out = tmp.appendingPathComponent("layers").path
        let r = try moco(["train", "--data", "synthetic", "--epochs", "1", "--train-subset", "256", "--batch-size", "32",
                          "--queue-size", "128", "--knn-features", "projection+stage2-grid2@0.5", "--log-every", "100", "--out", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        let metrics = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8)
        let monitor = try XCTUnwrap(metrics.split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .last { $0["type"] as? String == "knn" }?["knn_top1"] as? Double)
        func knn(_ layer: String) throws -> [String: Any] {
            let k = try moco(["knn", "--weights", out + "/checkpoint_0001.safetensors", "--features", layer, "--knn-bank", "256", "--json"])
            XCTAssertEqual(k.status, 0, k.stderr)
            return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(k.stdout.utf8)) as? [String: Any])
        }
        let monitored = try knn("projection+stage2-grid2@0.5")
        XCTAssertEqual(monitored["knn_top1"] as? Double ?? -1, monitor, accuracy: 1e-9)
        let config = try String(contentsOfFile: out + "/config.json", encoding: .utf8)
        XCTAssertTrue(config.contains("\"knnFeatures\" : \"projection+stage2-grid2@0.5\""), config)
        let projection = try knn("projection")
        XCTAssertTrue((0...100).contains(projection["knn_top1"] as? Double ?? -1), "\(projection)")
        XCTAssertTrue((projection["features"] as? String ?? "").contains("resnet20 projection from"), "\(projection)")
        let hidden = try knn("hidden")
        XCTAssertTrue((0...100).contains(hidden["knn_top1"] as? Double ?? -1), "\(hidden)")
        XCTAssertTrue((hidden["features"] as? String ?? "").contains("resnet20 hidden from"), "\(hidden)")
        let stage = try knn("stage2-grid4")
        XCTAssertTrue((0...100).contains(stage["knn_top1"] as? Double ?? -1), "\(stage)")
        XCTAssertTrue((stage["features"] as? String ?? "").contains("resnet20 stage2-grid4 from"), "\(stage)")
        let combined = try knn("stage2-grid4+backbone@0.5")
        XCTAssertTrue((0...100).contains(combined["knn_top1"] as? Double ?? -1), "\(combined)")
        XCTAssertTrue((combined["features"] as? String ?? "").contains("resnet20 stage2-grid4+backbone@0.5 from"), "\(combined)")
        let twice = try moco(["knn", "--weights", out + "/checkpoint_0001.safetensors", "--features", "stage2+stage2"])
        XCTAssertNotEqual(twice.status, 0)
        XCTAssertTrue(twice.stderr.contains("'stage2+stage2' is invalid for '--features"), twice.stderr)
        let finer = try moco(["knn", "--weights", out + "/checkpoint_0001.safetensors", "--features", "stage2-grid15", "--knn-bank", "256"])
        XCTAssertNotEqual(finer.status, 0)
        XCTAssertTrue(finer.stderr.contains("stage 2's map is 14x14"), finer.stderr)
        let typo = try moco(["knn", "--weights", out + "/checkpoint_0001.safetensors", "--features", "stage2grid4"])
        XCTAssertNotEqual(typo.status, 0)
        XCTAssertTrue(typo.stderr.contains("'stage2grid4' is invalid for '--features"), typo.stderr)
        // --held-out N: the last N training images against the ones before them.
        let held = try moco(["knn", "--weights", out + "/checkpoint_0001.safetensors", "--features", "stage2", "--held-out", "100",
                             "--knn-bank", "300", "--json"])
        XCTAssertEqual(held.status, 0, held.stderr)
        let h = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(held.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(h["test"] as? Int, 100)
        XCTAssertTrue((h["queries"] as? String ?? "").hasSuffix(":]"), "\(h)")
        XCTAssertTrue((h["data"] as? String ?? "").hasSuffix("[:300]"), "\(h)")
        XCTAssertTrue((0...100).contains(h["knn_top1"] as? Double ?? -1), "\(h)")
        for (args, message) in [(["--held-out", "0"], "--held-out must be positive"),
                                (["--held-out", "10", "--knn-test", "10"], "give one"),
                                (["--held-out", "100000000"], "leaves no bank")] {
            let r = try moco(["knn", "--weights", out + "/checkpoint_0001.safetensors"] + args)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains(message), "\(args): \(r.stderr)")
        }
        let bad = try moco(["knn", "--raw-pixels", "--data", "synthetic", "--features", "projection"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--features applies to an encoder"), bad.stderr)
    }
}
