import Foundation

/// `OUT/metrics.jsonl`: one JSON object per line (`type` train or knn), appended, so that a
/// resumed run continues the same file.
final class MetricsLog {
    private let handle: FileHandle

    init(path: String) throws {
        let fm = FileManager.default
        if !fm.fileExists(atPath: path) { _ = fm.createFile(atPath: path, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: path) else { throw ConfigError("cannot write \(path)") }
        h.seekToEndOfFile()
        handle = h
    }

    func write(_ fields: [String: Any]) {
        guard let d = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]) else { return }
        handle.write(d); handle.write(Data("\n".utf8))
    }

    func close() { try? handle.close() }
}
