#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One rank's timeline of a run, written as a Chrome trace: the JSON array form of the Trace
/// Event Format (Google, "Trace Event Format", 2016), which chrome://tracing and Perfetto's UI
/// (ui.perfetto.dev) open. Each event is a complete event, `"ph": "X"`, with a start `ts` and a
/// duration `dur` in microseconds since the timeline's origin, on one lane (`tid`) of this
/// rank's process (`pid` = rank), so that every rank's file can be opened alone or merged with
/// the others (`scripts/merge_timelines.py`) into one view with a row of lanes per rank.
///
/// Events are streamed to the file as they end and the file is flushed after every step, so
/// that a run that dies leaves a trace up to its last step: the array form's closing bracket
/// is optional (the format's specification allows it to be missing), and `close()` writes it.
///
/// The origin is taken right after a barrier of all ranks (`Timeline.open`), so that on one
/// host the ranks' clocks (CLOCK_MONOTONIC) line up to the barrier's exit skew, microseconds.
/// Across hosts each host's monotonic clock has its own origin and only the barrier aligns them.
public final class Timeline {
    /// The lanes of a rank: rows in the viewer, in this order.
    public enum Lane: Int, CaseIterable {
        /// One span per training step (and checkpoint saves, kNN evaluations).
        case steps = 1
        /// The phases of a step (`StepTimings`), data wait included.
        case phases = 2
        /// Blocking collectives: all-to-alls of shuffle-BN, the key all-gather, agreements.
        case collectives = 3
        /// Non-blocking allreduces (gradient buckets): lane `bucket + i` for the i-th of those
        /// in flight at once, from the call that started it to the test or wait that saw it done.
        case bucket = 10

        var title: String {
            switch self {
            case .steps: return "steps"
            case .phases: return "phases"
            case .collectives: return "collectives"
            case .bucket: return "allreduce in flight"
            }
        }
    }

    public let path: String
    public let rank: Int
    /// MonotonicClock seconds of ts = 0.
    public let origin: Double
    private var file: UnsafeMutablePointer<FILE>?
    private var first = true
    private var namedBucketLanes = 0
    /// Events written (metadata included).
    public private(set) var events = 0

    /// The file of `rank` for a `--timeline` path: the path itself for one rank, else the rank
    /// inserted before the extension (`trace.json` -> `trace.rank1.json`).
    public static func path(_ base: String, rank: Int, size: Int) -> String {
        guard size > 1 else { return base }
        let slash = base.lastIndex(of: "/").map { base.index(after: $0) } ?? base.startIndex
        if let dot = base[slash...].lastIndex(of: "."), dot > slash {
            return String(base[..<dot]) + ".rank\(rank)" + String(base[dot...])
        }
        return base + ".rank\(rank)"
    }

    /// Creates the file of `rank` (refusing to replace an existing one: a trace of an earlier
    /// run is not overwritten) and writes the process and lane names.
    /// - Parameter origin: MonotonicClock seconds of ts = 0.
    public init(path: String, rank: Int, origin: Double = MonotonicClock.now()) throws {
        self.path = path; self.rank = rank; self.origin = origin
        // O_EXCL: create, never truncate an existing trace.
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        if fd < 0 {
            let reason = errno == EEXIST ? "it exists (remove it or name another file)" : String(cString: strerror(errno))
            throw CommError.invalidArgument("--timeline", "cannot create \(path): \(reason)")
        }
        guard let f = fdopen(fd, "w") else {
            Glibc.close(fd)
            throw CommError.invalidArgument("--timeline", "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        file = f
        fputs("[\n", f)
        metadata("process_name", tid: nil, args: "\"name\":\"rank \(rank)\"")
        metadata("process_sort_index", tid: nil, args: "\"sort_index\":\(rank)")
        for lane in Lane.allCases where lane != .bucket {
            metadata("thread_name", tid: lane.rawValue, args: "\"name\":\"\(lane.title)\"")
            metadata("thread_sort_index", tid: lane.rawValue, args: "\"sort_index\":\(lane.rawValue)")
        }
    }

    /// Opens every rank's timeline of a job: each rank its own file (`path(_:rank:size:)`), all
    /// ranks agreeing on any failure, the origin taken after a barrier.
    public static func open(_ base: String, comm: Communicator) throws -> Timeline {
        try comm.barrier()
        let origin = MonotonicClock.now()
        return try comm.agreeing { try Timeline(path: path(base, rank: comm.rank, size: comm.size), rank: comm.rank, origin: origin) }
    }

    deinit { close() }

    /// A complete event from `start` to `end` (MonotonicClock seconds) on `lane` (+ `offset`
    /// for the bucket lanes). `args`: extra fields shown with the event, numbers or strings.
    public func span(_ name: String, category: String, lane: Lane, offset: Int = 0, start: Double, end: Double,
                     args: [(String, TimelineValue)] = []) {
        guard let f = file else { return }
        let tid = lane.rawValue + offset
        if lane == .bucket && offset >= namedBucketLanes {
            for i in namedBucketLanes...offset {
                metadata("thread_name", tid: Lane.bucket.rawValue + i, args: "\"name\":\"\(Lane.bucket.title) \(i)\"")
                metadata("thread_sort_index", tid: Lane.bucket.rawValue + i, args: "\"sort_index\":\(Lane.bucket.rawValue + i)")
            }
            namedBucketLanes = offset + 1
        }
        var line = "{\"name\":\"\(Timeline.escape(name))\",\"cat\":\"\(Timeline.escape(category))\",\"ph\":\"X\","
        line += "\"ts\":\(Timeline.micros(start - origin)),\"dur\":\(Timeline.micros(max(0, end - start))),"
        line += "\"pid\":\(rank),\"tid\":\(tid)"
        if !args.isEmpty {
            line += ",\"args\":{" + args.map { "\"\(Timeline.escape($0.0))\":\($0.1.json)" }.joined(separator: ",") + "}"
        }
        line += "}"
        write(line)
    }

    /// Pushes what has been written to the file (after each step; a crash keeps the trace so far).
    public func flush() { if let f = file { fflush(f) } }

    /// Ends the JSON array and closes the file. Idempotent.
    public func close() {
        guard let f = file else { return }
        fputs("\n]\n", f)
        fclose(f)
        file = nil
    }

    private func metadata(_ name: String, tid: Int?, args: String) {
        write("{\"name\":\"\(name)\",\"ph\":\"M\",\"pid\":\(rank)" + (tid.map { ",\"tid\":\($0)" } ?? "") + ",\"args\":{\(args)}}")
    }

    private func write(_ line: String) {
        guard let f = file else { return }
        if !first { fputs(",\n", f) }
        first = false
        fputs(line, f)
        events += 1
    }

    /// Microseconds with nanosecond digits (the format's `ts` and `dur` are microseconds and
    /// may be fractional).
    static func micros(_ seconds: Double) -> String {
        let ns = Int64((seconds * 1e9).rounded())
        let neg = ns < 0 ? "-" : ""
        let a = abs(ns)
        let frac = String(a % 1000)
        return "\(neg)\(a / 1000)." + String(repeating: "0", count: 3 - frac.count) + frac
    }

    /// A JSON string's content: quotes, backslashes and control characters escaped (RFC 8259 §7).
    static func escape(_ s: String) -> String {
        var out = ""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else { out.unicodeScalars.append(u) }
            }
        }
        return out
    }
}

/// A value of a timeline event's `args`.
public enum TimelineValue {
    case int(Int)
    case double(Double)
    case string(String)

    var json: String {
        switch self {
        case .int(let v): return String(v)
        case .double(let v): return v.isFinite ? String(v) : "null"
        case .string(let s): return "\"\(Timeline.escape(s))\""
        }
    }
}
