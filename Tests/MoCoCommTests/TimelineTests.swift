import XCTest
import Foundation
@testable import MoCoComm

/// `Timeline` (the Chrome trace of `--timeline`) and `TracingCommunicator`: the file is JSON that
/// a trace viewer reads, in microseconds, on the lanes it promises, readable up to the last flush
/// when the process dies, never replacing an existing file; tracing changes no value.
final class TimelineTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("moco-timeline-\(getpid())-\(name.hashValue)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func events(_ path: String, closing: Bool = false) throws -> [[String: Any]] {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        if closing { data += Data("\n]".utf8) }
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [[String: Any]], "not a JSON array of objects")
    }

    func testPerRankPaths() {
        XCTAssertEqual(Timeline.path("trace.json", rank: 0, size: 1), "trace.json")
        XCTAssertEqual(Timeline.path("out/trace.json", rank: 1, size: 2), "out/trace.rank1.json")
        XCTAssertEqual(Timeline.path("out.d/trace", rank: 3, size: 4), "out.d/trace.rank3")
        XCTAssertEqual(Timeline.path(".trace", rank: 0, size: 2), ".trace.rank0")
    }

    func testSpansAreCompleteEventsInMicroseconds() throws {
        let path = tmp.appendingPathComponent("t.json").path
        let t = try Timeline(path: path, rank: 2, origin: 100)
        t.span("query \"forward\"", category: "phase", lane: .phases, start: 100.5, end: 100.5015)
        t.span("iallreduce", category: "comm", lane: .bucket, offset: 1, start: 101, end: 101.000002,
               args: [("bytes", .int(4096)), ("note", .string("a\nb")), ("x", .double(.nan))])
        t.close()
        t.close()   // idempotent
        let e = try events(path)
        let spans = e.filter { $0["ph"] as? String == "X" }
        XCTAssertEqual(spans.count, 2)
        XCTAssertEqual(spans[0]["name"] as? String, "query \"forward\"")
        XCTAssertEqual(spans[0]["ts"] as? Double ?? -1, 500_000, accuracy: 1e-6)
        XCTAssertEqual(spans[0]["dur"] as? Double ?? -1, 1500, accuracy: 1e-3)
        XCTAssertEqual(spans[0]["pid"] as? Int, 2)
        XCTAssertEqual(spans[0]["tid"] as? Int, Timeline.Lane.phases.rawValue)
        XCTAssertEqual(spans[1]["tid"] as? Int, Timeline.Lane.bucket.rawValue + 1)
        XCTAssertEqual(spans[1]["dur"] as? Double ?? -1, 2, accuracy: 1e-3)
        let args = try XCTUnwrap(spans[1]["args"] as? [String: Any])
        XCTAssertEqual(args["bytes"] as? Int, 4096)
        XCTAssertEqual(args["note"] as? String, "a\nb")
        XCTAssertTrue(args["x"] is NSNull)
        // Names for the process and every lane used, bucket lanes 0 and 1 included.
        let names = e.filter { $0["ph"] as? String == "M" && $0["name"] as? String == "thread_name" }
            .compactMap { ($0["tid"] as? Int, ($0["args"] as? [String: Any])?["name"] as? String) }
        XCTAssertEqual(Set(names.map { $0.0 }), [1, 2, 3, 10, 11])
        XCTAssertTrue(e.contains { $0["name"] as? String == "process_name" && ($0["args"] as? [String: Any])?["name"] as? String == "rank 2" })
    }

    /// A process that dies after a flush leaves a trace that the array form reads without its
    /// closing bracket (here added to parse it with a strict JSON parser).
    func testAFlushedTraceIsReadableWithoutClose() throws {
        let path = tmp.appendingPathComponent("t.json").path
        let t = try Timeline(path: path, rank: 0, origin: 0)
        t.span("step 1", category: "step", lane: .steps, start: 1, end: 2)
        t.flush()
        let e = try events(path, closing: true)
        XCTAssertEqual(e.filter { $0["name"] as? String == "step 1" }.count, 1)
        withExtendedLifetime(t) {}
    }

    func testAnExistingFileIsNotReplaced() throws {
        let path = tmp.appendingPathComponent("old.json").path
        try Data("keep".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try Timeline(path: path, rank: 0)) { error in
            XCTAssertTrue("\(error)".contains("exists"), "\(error)")
            XCTAssertTrue("\(error)".contains(path), "\(error)")
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "keep")
        XCTAssertThrowsError(try Timeline(path: tmp.appendingPathComponent("no/such/dir.json").path, rank: 0))
    }

    /// Every call reaches the wrapped communicator with its values; each non-blocking allreduce
    /// gets a lane of its own while in flight and reports once, at the test or wait that saw it
    /// complete; the lane is free again afterwards.
    func testTracingCommunicatorRecordsCollectivesAndBucketLanes() throws {
        let path = tmp.appendingPathComponent("t.json").path
        let timeline = try Timeline(path: path, rank: 0)
        let inner = SingleProcessCommunicator()
        let comm = TracingCommunicator(inner, timeline: timeline)
        var a: [Float] = [1, 2, 3], b: [Float] = [4, 5]
        try a.withUnsafeMutableBufferPointer { pa in
            try b.withUnsafeMutableBufferPointer { pb in
                let r1 = try comm.iallreduce(pa.baseAddress!, count: 3, op: .sum)
                let r2 = try comm.iallreduce(pb.baseAddress!, count: 2, op: .sum)
                XCTAssertTrue(try r2.test())
                XCTAssertTrue(try r2.test())
                try r1.wait()
                try r1.wait()
                let r3 = try comm.iallreduce(pa.baseAddress!, count: 3, op: .sum)
                try r3.wait()
            }
        }
        XCTAssertEqual(a, [1, 2, 3]); XCTAssertEqual(b, [4, 5])
        XCTAssertEqual(try comm.allreduce(2.5, op: .sum), 2.5)
        try comm.barrier()
        XCTAssertEqual(try comm.broadcast(string: "hi", root: 0), "hi")
        XCTAssertEqual(comm.stats.totalCalls, inner.stats.totalCalls)
        timeline.close()
        let spans = try events(path).filter { $0["ph"] as? String == "X" }
        let buckets = spans.filter { $0["name"] as? String == "iallreduce" }
        XCTAssertEqual(buckets.map { $0["tid"] as? Int }, [11, 10, 10], "r2 (lane 1), r1 (lane 0), r3 (lane 0 again)")
        XCTAssertEqual(buckets.map { ($0["args"] as? [String: Any])?["bytes"] as? Int }, [8, 12, 12])
        let blocking = spans.filter { $0["tid"] as? Int == Timeline.Lane.collectives.rawValue }.compactMap { $0["name"] as? String }
        XCTAssertTrue(blocking.contains("allreduce") && blocking.contains("barrier") && blocking.contains("broadcast"), "\(blocking)")
    }
}
