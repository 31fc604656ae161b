import XCTest
import Foundation
import MoCoTestSupport

/// `moco export-folder` and `moco train --data folder` end to end: a tiny training run on an
/// exported folder with the random-encoder baseline at epoch 0, the decoded cache on the next
/// start, evaluation on the val split from the checkpoint's settings, and flag errors.
final class FolderCLITests: XCTestCase {
    var tmp = ""

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("moco-folder-cli-\(getpid())-\(name.hashValue)").path
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    /// Runs moco with im2col convolutions: in a debug build the Winograd kernels are ~5x slower.
    func moco(_ args: [String]) throws -> ProcessResult {
        guard let exe = builtExecutable("moco") else {
            XCTFail("the moco executable is not built (swift build)"); throw XCTSkip("no moco")
        }
        var env = mpiEnvironment
        env["MOCO_CONV"] = "im2col"
        return try runProcess(exe, args, environment: env, timeout: 300)
    }

    func testTinyTrainingRunOnAnExportedFolder() throws {
        let d = tmp + "/shapes"
        let e = try moco(["export-folder", "--data", "synthetic", "--out", d, "--limit", "32"])
        XCTAssertEqual(e.status, 0, e.stderr)
        XCTAssertTrue(e.stdout.contains("wrote 32 train and 32 val images (png, 28x28, 1 channel(s))"), e.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: d + "/train/3_plus/00003.png"))

        let common = ["train", "--data", "folder", "--data-dir", d, "--image-size", "16", "--epochs", "1", "--batch-size", "16",
                      "--queue-size", "32", "--bn-splits", "4", "--knn-at-start", "--log-every", "1", "--threads", "2"]
        let first = try moco(common + ["--out", tmp + "/run1"])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertTrue(first.stdout.contains("no decoded cache"), first.stdout)
        XCTAssertTrue(first.stdout.contains("decoded 64 images to 1 x 16x16"), first.stdout)
        XCTAssertTrue(first.stdout.contains("wrote the decoded cache \(d)/.moco-cache-16px-auto.bin"), first.stdout)
        XCTAssertTrue(first.stdout.contains("on shapes-train (32 images)"), first.stdout)
        XCTAssertTrue(first.stdout.contains("epoch 0: kNN top-1"), first.stdout)
        XCTAssertTrue(first.stdout.contains("epoch 1: kNN top-1"), first.stdout)
        XCTAssertTrue(first.stdout.contains("(random-initialised encoder"), first.stdout)
        let config = try String(contentsOfFile: tmp + "/run1/config.json", encoding: .utf8)
        XCTAssertTrue(config.contains("\"imageSize\" : 16") && config.contains("\"data\" : \"folder\""), config)
        let metrics = try String(contentsOfFile: tmp + "/run1/metrics.jsonl", encoding: .utf8)
        let knn = metrics.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["type"] as? String == "knn" }
        XCTAssertEqual(knn.compactMap { $0["epoch"] as? Int }, [0, 1], "the baseline record, then epoch 1")

        // The next start reads the cache; kNN of the checkpoint: the folder at the checkpoint's
        // size, val as the test set.
        let k = try moco(["knn", "--weights", tmp + "/run1/checkpoint_0001.safetensors", "--json"])
        XCTAssertEqual(k.status, 0, k.stderr)
        XCTAssertTrue(k.stdout.contains("from the decoded cache") && k.stdout.contains("\"data\": \"shapes-train\""), k.stdout)
        XCTAssertFalse(k.stdout.contains("decoding on"), k.stdout)
    }

    func testFolderFlagsAreChecked() throws {
        let cases: [([String], String)] = [
            (["--data", "folder"], "--data folder needs --data-dir"),
            (["--data", "folder", "--data-dir", tmp + "/none"], "image folder \(tmp)/none not found"),
            (["--data", "folder", "--data-dir", tmp, "--image-size", "4"], "--image-size must be in 8...512"),
            (["--data", "folder", "--data-dir", tmp, "--channels", "2"], "--channels must be 1 or 3"),
            (["--data", "synthetic", "--image-size", "28"], "apply to --data folder only"),
        ]
        for (args, expect) in cases {
            let r = try moco(["train", "--epochs", "1", "--out", tmp + "/bad"] + args)
            XCTAssertNotEqual(r.status, 0, args.joined(separator: " "))
            XCTAssertTrue(r.stderr.contains(expect), "\(args): \(r.stderr)")
        }
        let r = try moco(["export-folder", "--data", "folder", "--out", tmp + "/x"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("cannot be exported"), r.stderr)
    }
}
