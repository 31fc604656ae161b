import XCTest
import Foundation
import MoCoTestSupport
import SafeTensors
import MoCo

/// The faults a cluster job meets, on 2 ranks under mpirun: a stalled rank (the watchdog),
/// preemption by a signal, kill -9 at random moments, a crash while a checkpoint is written, a
/// full disk; and the signals of a single process. An extension of `DistributedTrainingTests`
/// so that XCTest runs these jobs one after another.
extension DistributedTrainingTests {
    /// 32 synthetic images, global batch 16: 2 steps per epoch; 3 epochs; a checkpoint each epoch.
    static let faultRun = ["--data", "synthetic", "--train-subset", "32", "--batch-size", "16", "--queue-size", "48",
                           "--knn-every", "0", "--threads", "1", "--log-every", "1", "--seed", "5", "--epochs", "3",
                           "--save-every", "1"]

    /// The uninterrupted 2-rank run of `faultRun` (once per process) and its duration.
    nonisolated(unsafe) static var faultReference: (checkpoint: String, seconds: Double)?
    static let faultReferenceDir = FileManager.default.temporaryDirectory.appendingPathComponent("moco-fault-ref-\(getpid())").path

    func faultReferenceRun() throws -> (checkpoint: String, seconds: Double) {
        if let r = Self.faultReference { return r }
        try? FileManager.default.removeItem(atPath: Self.faultReferenceDir)
        let r = try train(ranks: 2, Self.faultRun + ["--out", Self.faultReferenceDir])
        Self.faultReference = (Self.faultReferenceDir + "/checkpoint_0003.safetensors", r.seconds)
        return Self.faultReference!
    }

    /// Every tensor of two checkpoints, byte for byte.
    func assertBitwiseEqual(_ a: String, _ b: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let x = try SafeTensorsFile(path: a), y = try SafeTensorsFile(path: b)
        XCTAssertEqual(x.names, y.names, what, file: file, line: line)
        XCTAssertTrue(x.names.contains("queue") && x.names.contains("encoder_k.conv1.weight"), file: file, line: line)
        for n in x.names {
            let u = try x.withRawBytes(n) { Array($0) }, v = try y.withRawBytes(n) { Array($0) }
            XCTAssertEqual(u, v, "\(what): \(n) differs", file: file, line: line)
        }
        XCTAssertEqual(x.metadata["step"], y.metadata["step"], file: file, line: line)
    }

    /// Starts `moco train` (under mpirun with `ranks`, or alone) without waiting.
    func launch(ranks: Int?, _ args: [String], env extra: [String: String] = [:], log: String) throws -> Process {
        guard let exe = builtExecutable("moco") else { throw XCTSkip("the moco executable is not built") }
        var env = mpiEnvironment
        for (k, v) in extra { env[k] = v }
        let p = Process()
        if let ranks {
            guard let mpirun = findOnPath("mpirun") else { throw XCTSkip("mpirun is not installed") }
            p.executableURL = mpirun
            p.arguments = ["-np", String(ranks), "--oversubscribe", "--bind-to", "none", exe.path, "train"] + args
        } else {
            p.executableURL = exe
            p.arguments = ["train"] + args
        }
        p.environment = env
        FileManager.default.createFile(atPath: log, contents: nil)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardOutput = h; p.standardError = h
        try p.run()
        return p
    }

    /// Waits for `p` to exit, at most `seconds`; kills it (and fails) after that.
    func finish(_ p: Process, within seconds: Double, _ what: String, file: StaticString = #filePath, line: UInt = #line) -> Int32 {
        let end = Date().addingTimeInterval(seconds)
        while p.isRunning && Date() < end { usleep(50_000) }
        if p.isRunning {
            XCTFail("\(what): still running after \(seconds) s", file: file, line: line)
            kill(p.processIdentifier, SIGKILL); p.waitUntilExit()
        }
        return p.terminationStatus
    }

    /// The train records in OUT/metrics.jsonl so far.
    func trainRecords(_ dir: String) -> Int {
        guard let t = try? String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8) else { return 0 }
        return t.split(separator: "\n").filter { $0.contains("\"type\":\"train\"") }.count
    }

    /// Waits until OUT/metrics.jsonl holds at least `n` train records.
    func waitForRecords(_ dir: String, _ n: Int, of p: Process, timeout: Double = 120) throws {
        let end = Date().addingTimeInterval(timeout)
        while trainRecords(dir) < n {
            guard p.isRunning, Date() < end else { throw XCTSkip("the run ended or stalled before \(n) steps") }
            usleep(50_000)
        }
    }

    /// The processes whose parent is `pid` (mpirun's ranks).
    func children(of pid: Int32) -> [Int32] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return names.compactMap { Int32($0) }.filter { child in
            guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == pid
        }
    }

    /// Processes still running with `marker` in their command line.
    func survivors(_ marker: String) -> [Int32] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return names.compactMap { Int32($0) }.filter { pid in
            guard let cmd = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: cmd, as: UTF8.self).contains(marker)
        }
    }

    // MARK: - A stalled rank

    /// Rank 1 stops itself (SIGSTOP) before step 4 with --collective-timeout 10: rank 0's
    /// collective times out, names rank 1 as missing, and the whole job is gone within 25 s of
    /// the stall, non-zero; checkpoint_0001 is intact and the run resumes to the end.
    func testStalledRankIsEndedByTheWatchdog() throws {
        let dir = out("stall")
        let r = try train(ranks: 2, Self.faultRun + ["--out", dir, "--collective-timeout", "10"],
                          env: ["MOCO_STALL_AT": "1:4"], expectSuccess: false)
        let ended = Date().timeIntervalSince1970
        let all = r.stdout + r.stderr
        XCTAssertEqual(r.status, 124, all)
        XCTAssertTrue(all.contains("rank 0: collective timeout:") && all.contains("(global step 4) did not complete within 10 s")
                      && all.contains("rank(s) 1 did not report"), all)
        let stalled = all.components(separatedBy: "at unix time ").dropFirst().first.flatMap { Double($0.prefix(while: { $0 != "\n" })) }
        guard let stalled else { return XCTFail("no stall time in the output:\n\(all)") }
        XCTAssertLessThan(ended - stalled, 25, "from stall to the end of the job")
        print("stalled rank: job ended \(String(format: "%.1f", ended - stalled)) s after the stall")
        XCTAssertEqual(survivors(dir), [], "processes of the stalled job are still running")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/checkpoint_0001.safetensors"))
        let resumed = try train(ranks: 2, Self.faultRun + ["--out", dir, "--resume", "auto"])
        XCTAssertTrue(resumed.stdout.contains("resumed from \(dir)/checkpoint_0001.safetensors"), resumed.stdout)
        try assertBitwiseEqual(try faultReferenceRun().checkpoint, dir + "/checkpoint_0003.safetensors", "resumed after the stall")
    }

    // MARK: - A suspended run

    /// A run stopped with SIGSTOP (e.g. `kill -STOP` of a whole job to free the cores for a
    /// while) for longer than its --collective-timeout plus the backstop's grace (2 + 5 s) is not
    /// a stall: after SIGCONT it goes on and finishes, one process and a 2-rank job alike (every
    /// process of the job stopped together). A stalled peer still ends a job
    /// (`testStalledRankIsEndedByTheWatchdog`): its peers keep running and see the wait.
    func testSuspendedRunIsNotAStall() throws {
        for ranks in [nil, 2] as [Int?] {
            let dir = out("suspended-\(ranks ?? 1)")
            let args = ["--data", "synthetic", "--train-subset", "512", "--batch-size", "128", "--queue-size", "256",
                        "--knn-every", "0", "--threads", "1", "--log-every", "1", "--seed", "5", "--epochs", "4",
                        "--save-every", "4", "--collective-timeout", "2", "--out", dir]
            let log = out("suspended-\(ranks ?? 1).log")
            let p = try launch(ranks: ranks, args, log: log)
            try waitForRecords(dir, 2, of: p)
            let pids = survivors(dir)
            XCTAssertFalse(pids.isEmpty)
            for pid in pids { kill(pid, SIGSTOP) }
            sleep(10)
            for pid in pids { kill(pid, SIGCONT) }
            let status = finish(p, within: 120, "the suspended run")
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            XCTAssertEqual(status, 0, text)
            XCTAssertFalse(text.contains("watchdog") || text.contains("collective timeout"), text)
            XCTAssertTrue(text.contains("done: 4 epochs"), text)
        }
    }

    // MARK: - Preemption

    /// SIGUSR1 to mpirun (what `sbatch --signal=B:USR1@T` delivers) after 3 steps: every rank
    /// finishes the same step, a mid-epoch checkpoint is written, the job exits 75; resumed, the
    /// final weights are bitwise those of the uninterrupted run.
    func testSignalToMpirunSavesMidEpochAndResumesBitwise() throws {
        let dir = out("preempt")
        let p = try launch(ranks: 2, Self.faultRun + ["--out", dir], log: out("preempt.log"))
        try waitForRecords(dir, 3, of: p)
        let signalled = Date()
        kill(p.processIdentifier, SIGUSR1)
        let status = finish(p, within: 60, "the signalled job")
        let log = (try? String(contentsOfFile: out("preempt.log"), encoding: .utf8)) ?? ""
        XCTAssertEqual(status, 75, log)
        print("preemption: exit \(status) \(String(format: "%.1f", Date().timeIntervalSince(signalled))) s after SIGUSR1")
        XCTAssertTrue(log.contains("stopped by signal \(SIGUSR1)") && log.contains("continue with --resume auto"), log)
        // The ranks agree after each step, so the stop lands after whichever step the signal
        // reached them in: step 3 or a later one on a fast machine (seen: epoch 2 + 1 step), never
        // the run's end; the one-process tests pin the mid-epoch case exactly (ReliabilityTests).
        let saved = Checkpoint.list(in: dir).first
        XCTAssertNotNil(saved)
        let at = saved?.position ?? .init(epoch: -1)
        XCTAssertTrue(at.epoch >= 1 && at.epoch < 3, "\(String(describing: saved))")
        print("preemption: saved \(saved.map { "\($0.position)" } ?? "nothing")")
        XCTAssertEqual(survivors(dir), [])
        _ = try train(ranks: 2, Self.faultRun + ["--out", dir, "--resume", "auto"])
        try assertBitwiseEqual(try faultReferenceRun().checkpoint, dir + "/checkpoint_0003.safetensors", "resumed after SIGUSR1")
    }

    /// One process: SIGTERM stops it with a checkpoint (exit 75), SIGINT in the continued run
    /// too; two signals in a row exit at once (143); the run then finishes from the last save.
    func testSignalsStopASingleProcess() throws {
        let dir = out("single")
        let args = Self.faultRun + ["--out", dir]
        // Each signal goes after a step this invocation logged (so its handlers are installed;
        // metrics.jsonl keeps the earlier invocations' records).
        for sig in [SIGTERM, SIGINT] {
            let base = trainRecords(dir)
            let p = try launch(ranks: nil, args + ["--resume", "auto"], log: out("single.log"))
            try waitForRecords(dir, base + 1, of: p)
            kill(p.processIdentifier, sig)
            let status = finish(p, within: 60, "moco train after signal \(sig)")
            let log = (try? String(contentsOfFile: out("single.log"), encoding: .utf8)) ?? ""
            XCTAssertEqual(status, 75, log)
            XCTAssertTrue(log.contains("stopped by signal \(sig)"), log)
        }
        // Two signals in a row, on a run of its own with steps long enough (batch 128) and
        // enough of them that it is still inside a step when both arrive: `faultRun`'s last few
        // millisecond steps can all end between two polls on a fast machine (seen: exit 0).
        let twice = out("single-twice")
        let long = ["--data", "synthetic", "--train-subset", "1024", "--batch-size", "128", "--queue-size", "256",
                    "--knn-every", "0", "--threads", "1", "--log-every", "1", "--seed", "5", "--epochs", "20",
                    "--save-every", "1", "--out", twice]
        let p = try launch(ranks: nil, long, log: out("single-twice.log"))
        try waitForRecords(twice, 1, of: p)
        let before = Checkpoint.list(in: twice).map(\.path)
        kill(p.processIdentifier, SIGTERM); usleep(20_000); kill(p.processIdentifier, SIGTERM)
        XCTAssertEqual(finish(p, within: 10, "moco train after two signals"), 128 + SIGTERM)
        XCTAssertEqual(Checkpoint.list(in: twice).map(\.path), before, "two signals must not save")
        // The first run finishes from its last save.
        let r = try train(ranks: nil, args + ["--resume", "auto"])
        XCTAssertTrue(r.stdout.contains("done: 3 epochs, 6 steps"), r.stdout)
    }

    // MARK: - kill -9

    /// 20 times in a row: start (or continue, `--resume auto`) the 2-rank job, wait a random
    /// time, kill -9 one of its ranks at random. Whenever a continued run reaches the end before
    /// its kill, its final weights must be bitwise those of the uninterrupted run, and the next
    /// start begins a new run in a fresh folder; after the 20th kill the run is continued to the
    /// end and compared the same way. The kill moments scale with the uninterrupted run's
    /// duration R (so they land inside the run on a fast machine and a slow one alike): half of
    /// them uniform in 0...R after the launch (start-up, steps, saves); the other half at the
    /// end of an epoch chosen at random (its last step's record), plus 0-50 ms, which is where
    /// the checkpoint is being written. A kill that comes as the job exits (the job still ends
    /// with status 0) must find the run complete and exact, and does not count. The seed is
    /// printed.
    func testTwentyKillsInARowStillFinishBitwise() throws {
        let ref = try faultReferenceRun()
        var rng = SplitMix(seed: UInt64(Date().timeIntervalSince1970 * 1000))
        print("kill -9 test: seed \(rng.seed) (the reference run took \(String(format: "%.1f", ref.seconds)) s)")
        var kills = 0, finished = 0, lateKills = 0, staleSeen = 0, resumedFrom: [String] = [], round = 0
        var dir = out("kills-0")
        while kills < 20 {
            let p = try launch(ranks: 2, Self.faultRun + ["--out", dir, "--resume", "auto"], log: out("kills.log"))
            let started = Date(), base = trainRecords(dir)
            if rng.next() % 2 == 0 {
                let end = started.addingTimeInterval(ref.seconds * rng.unit())
                while p.isRunning && Date() < end { usleep(5_000) }
            } else {
                // A continued run starts at an epoch boundary: base is a multiple of the 2 steps
                // an epoch has; the epochs left are 3 - base / 2.
                let epochEnd = base + 2 * (1 + Int(rng.next() % UInt64(max(1, 3 - base / 2))))
                while p.isRunning && trainRecords(dir) < epochEnd { usleep(2_000) }
                let end = Date().addingTimeInterval(0.05 * rng.unit())
                while p.isRunning && Date() < end { usleep(1_000) }
            }
            let ranks = children(of: p.processIdentifier)
            if !p.isRunning || ranks.isEmpty {
                let status = finish(p, within: 60, "job after \(kills) kills")
                let log = (try? String(contentsOfFile: out("kills.log"), encoding: .utf8)) ?? ""
                XCTAssertEqual(status, 0, log)
                guard status == 0 else { return }
                try assertBitwiseEqual(ref.checkpoint, dir + "/checkpoint_0003.safetensors", "finished after \(kills) kills")
                finished += 1; round += 1; dir = out("kills-\(round)")
                continue
            }
            let newest = Checkpoint.list(in: dir).first
            kill(ranks[Int(rng.next() % UInt64(ranks.count))], SIGKILL)
            let status = finish(p, within: 60, "job after kill \(kills + 1)")
            if status == 0 {
                // The rank had already finished (its last checkpoint written, exiting) when the
                // signal came: then the run must be complete and exact, and the kill does not count.
                let log = (try? String(contentsOfFile: out("kills.log"), encoding: .utf8)) ?? ""
                XCTAssertTrue(log.contains("done:"), "a job with a killed rank exited 0 without finishing:\n\(log)")
                try assertBitwiseEqual(ref.checkpoint, dir + "/checkpoint_0003.safetensors", "finished as kill \(kills + 1) came")
                finished += 1; lateKills += 1; round += 1; dir = out("kills-\(round)")
                continue
            }
            if let newest { resumedFrom.append("\(newest.position)") }
            kills += 1
            if !Checkpoint.staleTemporaries(in: dir).isEmpty { staleSeen += 1 }
            XCTAssertEqual(survivors(dir), [], "after kill \(kills)")
        }
        let r = try train(ranks: 2, Self.faultRun + ["--out", dir, "--resume", "auto"])
        XCTAssertTrue(r.stdout.contains("done:"), r.stdout)
        try assertBitwiseEqual(ref.checkpoint, dir + "/checkpoint_0003.safetensors", "after 20 kills")
        // The kills must have hit runs in progress, not only start-ups: most of them find a
        // checkpoint to continue from (about 2/3 are expected to).
        XCTAssertGreaterThanOrEqual(resumedFrom.count, 6, "kills that found a checkpoint: \(resumedFrom)")
        print("kill -9 test: 20 kills, \(finished) run(s) finished between kills (bitwise equal; \(lateKills) as the kill came), \(staleSeen) kill(s) "
              + "left a half-written checkpoint; newest checkpoint at each kill: \(resumedFrom.joined(separator: ", "))")
    }

    /// Rank 0 dies half-way through writing checkpoint_0002 (MOCO_CRASH_IN_SAVE): the half file
    /// stays under its temporary name only, checkpoint_0001 is intact, and the continued run
    /// removes the leftover and ends bitwise equal to the uninterrupted run.
    func testCrashWhileWritingACheckpointKeepsThePreviousOne() throws {
        let dir = out("crash")
        let r = try train(ranks: 2, Self.faultRun + ["--out", dir], env: ["MOCO_CRASH_IN_SAVE": "2"], expectSuccess: false)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(Checkpoint.list(in: dir).map(\.position), [Checkpoint.Position(epoch: 1)])
        XCTAssertEqual(Checkpoint.staleTemporaries(in: dir).count, 1)
        let resumed = try train(ranks: 2, Self.faultRun + ["--out", dir, "--resume", "auto"])
        XCTAssertTrue(resumed.stdout.contains("left by an interrupted checkpoint write"), resumed.stdout)
        XCTAssertEqual(Checkpoint.staleTemporaries(in: dir), [])
        try assertBitwiseEqual(try faultReferenceRun().checkpoint, dir + "/checkpoint_0003.safetensors", "after a crash in a save")
    }

    // MARK: - A full disk

    /// --out on a tmpfs that holds one checkpoint but not two: the second save fails with ENOSPC
    /// on rank 0, every rank stops with the same error, no half-written file is left under any
    /// name, and checkpoint_0001 is intact (its checksum verifies). Needs root (mount).
    func testFullDiskStopsEveryRankAndKeepsThePreviousCheckpoint() throws {
        let size = try FileManager.default.attributesOfItem(atPath: try faultReferenceRun().checkpoint)[.size] as! Int
        let mnt = out("tmpfs")
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        let kb = (size * 3 / 2) / 1024 + 64
        let m = try runProcess(URL(fileURLWithPath: "/bin/mount"), ["-t", "tmpfs", "-o", "size=\(kb)k", "tmpfs", mnt], timeout: 20)
        guard m.status == 0 else { throw XCTSkip("cannot mount a tmpfs (needs root): \(m.stderr)") }
        defer { _ = try? runProcess(URL(fileURLWithPath: "/bin/umount"), [mnt], timeout: 20) }
        let dir = mnt + "/run"
        let r = try train(ranks: 2, Self.faultRun + ["--out", dir], expectSuccess: false)
        let all = r.stdout + r.stderr
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(all.contains("checkpoint not saved (the previous ones are kept)") && all.contains("No space left on device"), all)
        XCTAssertEqual(all.components(separatedBy: "No space left on device").count - 1, 1, "one message, from rank 0: \(all)")
        XCTAssertEqual(survivors(dir), [])
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        XCTAssertEqual(names, ["checkpoint_0001.safetensors", "config.json", "metrics.jsonl", "tb"])
        XCTAssertTrue(try Checkpoint.info(try SafeTensorsFile(path: dir + "/checkpoint_0001.safetensors")).verified)
        let metrics = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8)
        XCTAssertTrue(metrics.hasSuffix("\n"), "metrics.jsonl ends in half a line")
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014), for reproducible random kill times.
struct SplitMix {
    let seed: UInt64
    private var state: UInt64
    init(seed: UInt64) { self.seed = seed; state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
