import XCTest
import Foundation
@testable import TensorBoard

/// The event file writer read back by this module's own reader (TensorBoard's reader:
/// `TensorBoardReaderTests`), its file names, and pruning on resume.
final class EventFileTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("moco-tb-\(getpid())-\(name.hashValue)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func testWriterWritesVersionThenScalars() throws {
        var clock = 1_700_000_000.25
        let w = try EventFileWriter(directory: dir, now: { clock })
        clock += 1
        try w.addScalars([("train/loss", 6.5), ("train/lr", 0.06)], step: 10)
        clock += 1
        try w.addScalars([("train/loss", 0)], step: 20)   // zero is written (a oneof has presence)
        w.close()
        XCTAssertEqual(EventFiles.list(in: dir), [w.path])
        XCTAssertTrue((w.path as NSString).lastPathComponent.hasPrefix("events.out.tfevents.1700000000."), w.path)

        let events = try EventFiles.events(of: w.path).map { $0.event! }
        XCTAssertEqual(events.count, 3)
        XCTAssertEqual(events[0].fileVersion, "brain.Event:2")
        XCTAssertEqual(events[0].wallTime, 1_700_000_000.25)
        XCTAssertEqual(try EventFiles.scalars(of: w.path), [
            .init(step: 10, tag: "train/loss", value: 6.5, wallTime: 1_700_000_001.25),
            .init(step: 10, tag: "train/lr", value: 0.06, wallTime: 1_700_000_001.25),
            .init(step: 20, tag: "train/loss", value: 0, wallTime: 1_700_000_002.25),
        ])
    }

    /// A new file sorts after every earlier one, even started in the same second or after the
    /// clock went back.
    func testFileNamesSortAfterEarlierFiles() {
        let a = EventFileWriter.fileName(seconds: 100, host: "h", pid: 9, existing: [])
        XCTAssertEqual(a, "events.out.tfevents.0000000100.h.9")
        let b = EventFileWriter.fileName(seconds: 100, host: "h", pid: 10, existing: [a])
        let c = EventFileWriter.fileName(seconds: 50, host: "h", pid: 1, existing: [a, b, "notes.txt"])
        XCTAssertEqual([c, a, b].sorted(), [a, b, c])
        XCTAssertEqual(EventFileWriter.fileName(seconds: 200, host: "h", pid: 1, existing: [a, b]), "events.out.tfevents.0000000200.h.1")
    }

    /// Pruning after step S: later events go, the version record and earlier steps stay, an
    /// incomplete last record goes, a leftover temporary file goes, a damaged file stays.
    func testDropEventsAfterStep() throws {
        let w = try EventFileWriter(directory: dir)
        for s in 1...6 { try w.addScalars([("x", Float(s))], step: s) }
        try w.addSessionStart(step: 6)   // not a scalar: kept
        w.close()
        // A crash mid-record: half of one more record at the end.
        let more = TFRecord.frame(try Tensorflow_Event.with { $0.step = 7 }.serializedBytes())
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: w.path))
        h.seekToEndOfFile(); h.write(Data(more.prefix(more.count / 2))); h.closeFile()
        let stale = dir + "/events.out.tfevents.0000000001.h.1.tmp.4242"
        _ = FileManager.default.createFile(atPath: stale, contents: Data([1, 2, 3]))
        let damaged = dir + "/events.out.tfevents.0000000002.h.1"
        var junk = TFRecord.frame([1, 2, 3]); junk[13] ^= 1
        _ = FileManager.default.createFile(atPath: damaged, contents: Data(junk))

        let r = try EventFiles.dropEvents(after: 4, in: dir)
        XCTAssertEqual(r.dropped, 2)
        XCTAssertEqual(r.damaged.count, 1)
        XCTAssertTrue(r.damaged[0].contains(damaged), "\(r.damaged)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale))
        XCTAssertEqual(try EventFiles.scalars(of: w.path).map(\.step), [1, 2, 3, 4])
        let kept = try EventFiles.events(of: w.path).map { $0.event! }
        XCTAssertEqual(kept.count, 1 + 4 + 1)
        XCTAssertEqual(kept.first?.fileVersion, "brain.Event:2")
        XCTAssertEqual(kept.last?.sessionLog.status, .start)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: damaged)), Data(junk), "a damaged file is left as it was")
        // Nothing more to drop: the file is not rewritten.
        let inode = try FileManager.default.attributesOfItem(atPath: w.path)[.systemFileNumber] as? Int
        XCTAssertEqual(try EventFiles.dropEvents(after: 4, in: dir).dropped, 0)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: w.path)[.systemFileNumber] as? Int, inode)
    }

    /// A failed write leaves no partial record (AppendOnlyFile truncates it back).
    func testFailedWriteIsReported() throws {
        let w = try EventFileWriter(directory: dir)
        w.close()
        XCTAssertThrowsError(try w.addScalars([("x", 1)], step: 1)) { XCTAssertTrue("\($0)".contains("closed"), "\($0)") }
    }
}
