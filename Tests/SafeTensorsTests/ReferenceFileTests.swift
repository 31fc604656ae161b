import Foundation
import XCTest
import MoCoTestSupport
@testable import SafeTensors

/// Reads the PyTorch-written reference steps (`ReferenceFiles`: the committed one, and the
/// shared one beside the repository when present).
final class ReferenceFileTests: XCTestCase {
    func testReadsPyTorchReferenceFiles() throws {
        for path in ReferenceFiles.all { try check(path) }
    }

    func check(_ path: String) throws {
        XCTAssertTrue(FileManager.default.fileExists(atPath: path), "reference file missing: \(path)")
        let f = try SafeTensorsFile(path: path)
        XCTAssertEqual(f.tensors.count, 665, path)
        XCTAssertEqual(f.metadata["K"], "64")

        try f.expect("in.im_q", dtype: .f32, shape: [8, 1, 28, 28])
        let imq = try f.floats("in.im_q")
        XCTAssertEqual(imq.count, 8 * 28 * 28)
        XCTAssertTrue(imq.allSatisfy(\.isFinite))

        try f.expect("in.perm", dtype: .i64, shape: [8])
        let perm = try f.int64s("in.perm")
        XCTAssertEqual(perm.sorted(), Array(0..<8), "perm is a permutation")

        XCTAssertFalse(f.names(withPrefix: "in.encoder_q.").isEmpty)
        XCTAssertEqual(f.names(withPrefix: "in.encoder_q.").count, f.names(withPrefix: "in.encoder_k.").count)

        // Whole data section is covered: every byte belongs to exactly one tensor.
        let total = f.tensors.values.reduce(0) { $0 + $1.byteCount }
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        let headerLength = try Data(contentsOf: URL(fileURLWithPath: path)).prefix(8)
            .reversed().reduce(0) { $0 << 8 | Int($1) }
        XCTAssertEqual(total, size - 8 - headerLength)

        // Rewriting and re-reading preserves every tensor bit-exactly.
        var w = SafeTensorsWriter()
        w.metadata = f.metadata
        for name in f.names {
            let info = f.tensors[name]!
            switch info.dtype {
            case .f32: w.add(name, shape: info.shape, floats: try f.floats(name))
            case .i64: w.add(name, shape: info.shape, int64s: try f.int64s(name))
            }
        }
        let g = try SafeTensorsFile(bytes: w.serialized())
        XCTAssertEqual(g.names, f.names)
        XCTAssertEqual(g.metadata, f.metadata)
        for name in f.names {
            XCTAssertEqual(try g.withRawBytes(name) { Array($0) }, try f.withRawBytes(name) { Array($0) }, name)
        }
    }
}
