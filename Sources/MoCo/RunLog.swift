import Foundation
import SafeTensors
import TensorBoard

/// Rank 0's log of a run: every `MetricsRecord` goes to `OUT/metrics.jsonl` and, as scalars by
/// global step, to a TensorBoard event file `OUT/tb/events.out.tfevents.*` (`EventFileWriter`),
/// both written record by record with nothing buffered in the process.
///
/// A run continued from a checkpoint at global step S (`--resume`) writes a new event file in
/// the same folder (TensorBoard reads them all, in name order). What an earlier invocation wrote
/// for steps after S (it stopped after that checkpoint without another: a crash, a failure) is
/// removed from metrics.jsonl and from the earlier event files before the continued run writes
/// those steps again, and the new file starts with `SessionLog` START at S + 1, on which
/// TensorBoard also drops such events from what it has already loaded. No step is logged twice.
final class RunLog {
    let metrics: MetricsLog
    let events: EventFileWriter

    /// The folder of the event files.
    static func tensorBoardDirectory(out: String) -> String { out + "/tb" }

    /// Opens the log of a run in `out` (which exists) that continues after global step `step`
    /// (0 for a new run), first removing the records of later steps; `note` is told what was
    /// removed.
    init(out: String, continuingAfter step: Int, note: (String) -> Void) throws {
        let path = out + "/metrics.jsonl"
        let dropped = try MetricsLog.dropRecords(after: step, path: path)
        if dropped > 0 { note("removed \(dropped) record(s) after step \(step) from \(path) (written after the checkpoint by an earlier run)") }
        metrics = try MetricsLog(path: path)

        let dir = RunLog.tensorBoardDirectory(out: out)
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let tb = try EventFiles.dropEvents(after: step, in: dir)
            if tb.dropped > 0 { note("removed \(tb.dropped) TensorBoard event(s) of steps after \(step) from \(dir)") }
            for problem in tb.damaged { note("warning: TensorBoard file left as it is, its framing is damaged: \(problem)") }
            events = try EventFileWriter(directory: dir)
            try events.addSessionStart(step: step + 1)
        } catch let e as ConfigError { throw e } catch {
            throw ConfigError("cannot prepare the TensorBoard log in \(dir): \(error)")
        }
    }

    func write(_ record: MetricsRecord) throws {
        try metrics.write(record.json)
        do { try events.addScalars(record.scalars, step: record.step) } catch {
            throw ConfigError("cannot write TensorBoard events to \(events.path): \((error as? SafeTensorsError)?.message ?? "\(error)")")
        }
    }

    func close() {
        metrics.close()
        events.close()
    }
}
