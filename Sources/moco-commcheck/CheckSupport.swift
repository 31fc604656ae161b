import MoCoComm

/// One self-check: returns nil if it passed on this rank, else a short failure detail.
/// Every rank runs every check, making the same collective calls, and verifies locally.
struct Check: Sendable {
    let name: String
    let body: @Sendable (Communicator) throws -> String?
}

/// Compares element by element and describes the first mismatch.
func compare<T: Equatable>(_ got: [T], _ want: [T], _ what: String = "") -> String? {
    guard got.count == want.count else { return "\(what)count \(got.count) != \(want.count)" }
    for i in 0..<got.count where got[i] != want[i] {
        return "\(what)index \(i): got \(got[i]), want \(want[i])"
    }
    return nil
}

/// Bit-exact comparison for floating point (so NaN sentinels compare equal).
func compareBits(_ got: [Float], _ want: [Float], _ what: String = "") -> String? {
    compare(got.map(\.bitPattern), want.map(\.bitPattern), what).map { _ in
        let i = zip(got, want).enumerated().first { $0.element.0.bitPattern != $0.element.1.bitPattern }?.offset ?? 0
        return "\(what)index \(i): got \(got[i]), want \(want[i])"
    }
}

/// FNV-1a hash of a string, exactly representable as a Double.
func fnv1a(_ s: String) -> Double {
    var h: UInt32 = 2_166_136_261
    for b in s.utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }
    return Double(h)
}

/// Runs `checks` in order. After each, the ranks agree on the outcome (so a failure on any rank
/// is reported with that rank's detail); rank 0 prints `ok <name>` or `FAIL <name>: detail`.
/// Returns (passed, failed), identical on all ranks. `inject` (check name, rank) replaces that
/// rank's result of that check with a failure, to test the failure path itself.
func runChecks(_ checks: [Check], on comm: Communicator,
               inject: (name: String, rank: Int)? = nil) -> (passed: Int, failed: Int) {
    var passed = 0, failed = 0
    for check in checks {
        var failure: String?
        do { failure = try check.body(comm) } catch { failure = "threw \(error)" }
        if let inject, inject.name == check.name, inject.rank == comm.rank { failure = "injected mismatch" }
        var line: String
        do {
            try comm.agree(failure.map(CheckFailure.init))
            line = "ok \(check.name)"
            passed += 1
        } catch let error as CommError {
            if case .peerFailed(let rank, let message) = error.kind {
                line = "FAIL \(check.name): rank \(rank): \(message)"
            } else {
                line = "FAIL \(check.name): agreement failed: \(error)"
            }
            failed += 1
        } catch {
            line = "FAIL \(check.name): \(error)"
            failed += 1
        }
        if comm.rank == 0 { print(line) }
    }
    return (passed, failed)
}

struct CheckFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
