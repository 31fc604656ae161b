#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SwiftProtobuf
import SafeTensors

/// Writes one TensorBoard event file, `DIR/events.out.tfevents.<seconds>.<host>.<pid>`: TFRecord
/// records (`TFRecord`) of `tensorflow.Event` messages (`tensorboard_event.proto`), the first one
/// the file version `brain.Event:2`, then scalars as `Summary.Value.simple_value` (float32) by
/// step. TensorBoard reads every such file of a folder in name order, so a run continued in the
/// same folder writes a new file that sorts after the earlier ones (`fileName`).
///
/// Every record is one `write(2)` (`AppendOnlyFile`): nothing is buffered in the process, so a
/// crash loses at most the record being written, and a failed write leaves no partial record.
public final class EventFileWriter {
    /// TensorBoard's `file_version` for files that use `SessionLog` to mark restarts.
    public static let fileVersion = "brain.Event:2"
    /// The prefix TensorBoard recognises event files by.
    public static let prefix = "events.out.tfevents."

    public let path: String
    private let file: AppendOnlyFile
    private let now: () -> Double

    /// Creates a new event file in `directory` (which must exist) and writes its version record.
    /// - Parameter now: seconds since the Unix epoch, for the file name and each event's wall time.
    public init(directory: String, now: @escaping () -> Double = { Date().timeIntervalSince1970 }) throws {
        self.now = now
        let existing = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        path = directory + "/" + EventFileWriter.fileName(seconds: Int(now()), host: EventFileWriter.hostName(),
                                                          pid: Int(getpid()), existing: existing)
        file = try AppendOnlyFile(path: path, exclusive: true)
        var e = Tensorflow_Event()
        e.wallTime = now()
        e.fileVersion = EventFileWriter.fileVersion
        try write(e)
    }

    /// `events.out.tfevents.<seconds, 10 digits>.<host>.<pid>`, with the seconds raised past
    /// those of every event file in `existing`, so that the new file sorts after all of them
    /// even when the clock went back or two runs started in the same second.
    static func fileName(seconds: Int, host: String, pid: Int, existing: [String]) -> String {
        let latest = existing.compactMap { name -> Int? in
            guard name.hasPrefix(prefix) else { return nil }
            return Int(name.dropFirst(prefix.count).prefix { $0 != "." })
        }.max()
        let s = max(seconds, (latest ?? -1) + 1)
        return prefix + String(format: "%010d", s) + ".\(host).\(pid)"
    }

    /// One event of scalars at `step`: a `Summary` with one `simple_value` per tag.
    public func addScalars(_ values: [(tag: String, value: Float)], step: Int) throws {
        var e = Tensorflow_Event()
        e.wallTime = now()
        e.step = Int64(step)
        e.summary = Tensorflow_Summary.with { s in
            s.value = values.map { v in Tensorflow_Summary.Value.with { $0.tag = v.tag; $0.simpleValue = v.value } }
        }
        try write(e)
    }

    /// `SessionLog` START at `step`: the run (re)starts there, and a reader drops the events of
    /// earlier sessions with steps from `step` on (TensorBoard's orphaned-data purge).
    public func addSessionStart(step: Int) throws {
        var e = Tensorflow_Event()
        e.wallTime = now()
        e.step = Int64(step)
        e.sessionLog = Tensorflow_SessionLog.with { $0.status = .start }
        try write(e)
    }

    public func close() { file.close() }

    private func write(_ e: Tensorflow_Event) throws {
        let data: [UInt8] = try e.serializedBytes()
        try file.append(TFRecord.frame(data))
    }

    /// This machine's name (gethostname), as TensorFlow's writer puts it in the file name.
    static func hostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }
}
