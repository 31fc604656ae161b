import XCTest
import Foundation
import MoCoTestSupport

/// `--data folder` under mpirun: the ranks share the decoding, rank 0 writes the cache, and the
/// result equals one process's (the decoded bytes, and the raw-pixel kNN on them).
final class DistributedFolderTests: XCTestCase {
    var tmp = ""

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("moco-dist-folder-\(getpid())").path
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    func testTwoRanksDecodeOnceAndAgreeWithOneProcess() throws {
        guard let exe = builtExecutable("moco") else { XCTFail("the moco executable is not built"); return }
        guard let mpirun = findOnPath("mpirun") else { throw XCTSkip("mpirun is not installed") }
        let d = tmp + "/shapes"
        let e = try runProcess(exe, ["export-folder", "--data", "synthetic", "--out", d, "--limit", "48"], environment: mpiEnvironment, timeout: 120)
        XCTAssertEqual(e.status, 0, e.stderr)
        let knn = ["knn", "--raw-pixels", "--data", "folder", "--data-dir", d, "--image-size", "12", "--threads", "1", "--json"]
        func top1(_ r: ProcessResult) -> Double? {
            let line = r.stdout.split(separator: "\n").last { $0.hasPrefix("{") }
            return line.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }?["knn_top1"] as? Double
        }
        let mpi = ["-np", "2", "--oversubscribe", "--bind-to", "none", exe.path]
        let two = try runProcess(mpirun, mpi + knn, environment: mpiEnvironment, timeout: 120)
        XCTAssertEqual(two.status, 0, two.stderr)
        XCTAssertTrue(two.stdout.contains("decoding on 2 rank(s) x 1 thread(s)"), two.stdout)
        XCTAssertEqual(two.stdout.components(separatedBy: "wrote the decoded cache").count, 2, "one line, from rank 0: \(two.stdout)")
        let cache = d + "/.moco-cache-12px-auto.bin"
        XCTAssertTrue(FileManager.default.fileExists(atPath: cache))
        let written = try Data(contentsOf: URL(fileURLWithPath: cache))
        // One process decodes the same bytes (no cache) and gets the same kNN top-1.
        try FileManager.default.removeItem(atPath: cache)
        let one = try runProcess(exe, knn, environment: mpiEnvironment, timeout: 120)
        XCTAssertEqual(one.status, 0, one.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: cache)), written, "the same decoded images")
        XCTAssertNotNil(top1(one))
        XCTAssertEqual(top1(one), top1(two))
        // Both ranks read the cache on the next start.
        let again = try runProcess(mpirun, mpi + knn, environment: mpiEnvironment, timeout: 120)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stdout.contains("from the decoded cache"), again.stdout)
        XCTAssertEqual(top1(again), top1(two))
    }
}
