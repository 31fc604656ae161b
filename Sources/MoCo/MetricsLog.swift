import Foundation
import SafeTensors

/// `OUT/metrics.jsonl`: one JSON object per line (`type` train or knn), appended, so that a
/// resumed run continues the same file.
///
/// Each record is one `write(2)` (`AppendOnlyFile`): if it fails part-way (ENOSPC, EIO), the
/// file is truncated back to its length before the record, so it never ends in half a line, and
/// the error is thrown (the trainer stops every rank with it).
final class MetricsLog {
    private let file: AppendOnlyFile
    let path: String

    init(path: String) throws {
        self.path = path
        do { file = try AppendOnlyFile(path: path) } catch let e as SafeTensorsError {
            throw ConfigError("cannot open \(path) for appending: \(e.message)")
        }
    }

    func write(_ fields: [String: Any]) throws {
        var line = [UInt8](try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]))
        line.append(UInt8(ascii: "\n"))
        do { try file.append(line) } catch let e as SafeTensorsError {
            throw ConfigError("cannot write metrics to \(path): \(e.message)")
        }
    }

    func close() { file.close() }

    /// Removes the records of steps after `step` from the file at `path` (before it is opened
    /// for a run that continues from a checkpoint at `step`): an earlier invocation wrote them
    /// after that checkpoint and then stopped (a crash, a failure), and the continued run writes
    /// those steps anew. The file is replaced atomically (`AtomicFile`), and only when there is
    /// something to remove; anything but a regular file is left alone.
    /// - Returns: the number of records removed.
    static func dropRecords(after step: Int, path: String) throws -> Int {
        guard let type = try? FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType,
              type == .typeRegular, let data = FileManager.default.contents(atPath: path) else { return 0 }
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)
        let kept = lines.filter { line in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                  let s = o["step"] as? Int else { return true }   // not a record of ours: keep it
            return s <= step
        }
        guard kept.count < lines.count else { return 0 }
        do { try AtomicFile.write(kept.flatMap { Array($0) + [UInt8(ascii: "\n")] }, to: path) }
        catch { throw ConfigError("cannot rewrite \(path) without the records after step \(step): \(error)") }
        return lines.count - kept.count
    }
}
