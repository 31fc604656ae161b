import Foundation
import XCTest
@testable import MoCoTensor

/// The worker pool behind `Parallel.run`: every part of every region runs exactly once and has
/// returned when `run` returns, part t always runs on the same thread, sleeping workers wake, and
/// a second thread is turned away while the pool is held. Each case runs under a watchdog, so a
/// lost wake-up fails the test instead of hanging the suite.
final class WorkerPoolTests: XCTestCase {
    /// Runs `body` on a thread of its own and fails if it has not returned within `seconds`.
    private func withinDeadline(_ seconds: Double = 60, file: StaticString = #filePath, line: UInt = #line,
                                _ body: @escaping @Sendable () -> Void) {
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread { body(); done.signal() }
        if done.wait(timeout: .now() + seconds) == .timedOut {
            XCTFail("the pool did not finish within \(seconds) s (a lost wake-up?)", file: file, line: line)
        }
    }

    /// Regions of 1 to 6 parts, alternately spinning and sleeping between them: each part's
    /// slot is incremented once per region and every write is visible when `run` returns.
    func testEveryPartRunsOnceAndIsVisibleOnReturn() {
        let pool = WorkerPool()!
        let result = Box<[Int]>([])
        withinDeadline {
            let regions = 1200, maxParts = 6
            var counts = [Int](repeating: 0, count: maxParts)
            let slots = UnsafeMutablePointer<Int>.allocate(capacity: maxParts)
            slots.initialize(repeating: 0, count: maxParts)
            for r in 0..<regions {
                let parts = 1 + r % maxParts
                for t in 0..<parts { counts[t] += 1 }
                let ok = pool.run(parts, spinNanoseconds: r % 2 == 0 ? 1_000_000 : 0) { t in slots[t] += 1 }
                precondition(ok)
                // Every part's write is visible here: the sums match after each region.
                for t in 0..<maxParts where slots[t] != counts[t] { result.value = [r, t, slots[t], counts[t]]; return }
            }
            result.value = Array(UnsafeBufferPointer(start: slots, count: maxParts))
            slots.deallocate()
        }
        XCTAssertEqual(result.value, (0..<6).map { t in (0..<1200).filter { 1 + $0 % 6 > t }.count })
    }

    /// Part t > 0 runs on the same thread in every region; part 0 on the caller's.
    func testEachPartKeepsItsThread() {
        let pool = WorkerPool()!
        let seen = Box<[[UInt]]>([])
        withinDeadline {
            var rounds: [[UInt]] = []
            let ids = UnsafeMutablePointer<UInt>.allocate(capacity: 4)
            for _ in 0..<200 {
                XCTAssertTrue(pool.run(4) { t in ids[t] = UInt(bitPattern: Int(bitPattern: pthread_self())) })
                rounds.append(Array(UnsafeBufferPointer(start: ids, count: 4)))
            }
            rounds.append([UInt(bitPattern: Int(bitPattern: pthread_self()))])
            ids.deallocate()
            seen.value = rounds
        }
        let rounds = seen.value
        XCTAssertEqual(rounds.count, 201)
        let caller = rounds.last![0]
        for round in rounds.dropLast() {
            XCTAssertEqual(round, rounds[0])
            XCTAssertEqual(round[0], caller)
        }
        XCTAssertEqual(Set(rounds[0]).count, 4, "four parts on four threads")
        XCTAssertEqual(pool.workers, 3)
    }

    /// Workers asleep (regions further apart than the spin) are woken by the next region.
    func testSleepingWorkersWake() {
        let pool = WorkerPool()!
        let total = Box<Int>(0)
        withinDeadline {
            let sum = UnsafeMutablePointer<Int>.allocate(capacity: 2)
            sum.initialize(repeating: 0, count: 2)
            for _ in 0..<40 {
                XCTAssertTrue(pool.run(2, spinNanoseconds: 100_000) { t in sum[t] += 1 })
                usleep(2_000)   // 20x the spin: the worker is asleep when the next region starts
            }
            total.value = sum[0] + sum[1]
            sum.deallocate()
        }
        XCTAssertEqual(total.value, 80)
    }

    /// While one thread's region runs, another thread's `run` returns false and runs nothing.
    func testASecondThreadIsTurnedAway() {
        let pool = WorkerPool()!
        let inside = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let ran = Box<Bool>(false), accepted = Box<Bool>(true)
        let first = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            _ = pool.run(2) { t in if t == 0 { inside.signal(); release.wait() } }
            first.signal()
        }
        XCTAssertEqual(inside.wait(timeout: .now() + 30), .success)
        accepted.value = pool.run(2) { _ in ran.value = true }
        release.signal()
        XCTAssertEqual(first.wait(timeout: .now() + 30), .success)
        XCTAssertFalse(accepted.value)
        XCTAssertFalse(ran.value)
        XCTAssertTrue(pool.run(2) { _ in }, "free again once the region has returned")
    }

    /// `Parallel.run` through the shared pool gives the Dispatch path's results: a per-part
    /// reduction combined in part order, bit for bit.
    func testParallelRunMatchesSerial() {
        let n = 100_003
        let x = (0..<n).map { Float(sin(Double($0) * 0.37)) }
        func sums(_ parts: Int) -> [Float] {
            var partials = [Float](repeating: 0, count: parts)
            partials.withUnsafeMutableBufferPointer { p in
                x.withUnsafeBufferPointer { xs in
                    let out = p.baseAddress!, src = xs.baseAddress!
                    Parallel.run(parts) { t in
                        var s: Float = 0
                        for i in Parallel.partition(n, parts: parts, t) { s += src[i] * src[i] }
                        out[t] = s
                    }
                }
            }
            return partials
        }
        for parts in [2, 3, 4, 7] {
            var serial = [Float](repeating: 0, count: parts)
            for t in 0..<parts { for i in Parallel.partition(n, parts: parts, t) { serial[t] += x[i] * x[i] } }
            XCTAssertEqual(sums(parts), serial, "parts \(parts)")
        }
    }
    /// `Parallel.dynamic` hands every item out exactly once, to valid workers, with fewer items
    /// than workers and with none; a worker held up (here: worker 0 sleeps on its first item)
    /// leaves the remaining items to the others.
    func testDynamicRunsEveryItemOnce() {
        for (parts, items) in [(2, 37), (3, 5), (4, 2), (2, 0), (1, 9)] {
            let counts = UnsafeMutablePointer<Int>.allocate(capacity: max(items, 1))
            let owners = UnsafeMutablePointer<Int>.allocate(capacity: max(items, 1))
            counts.initialize(repeating: 0, count: max(items, 1))
            defer { counts.deallocate(); owners.deallocate() }
            Parallel.dynamic(parts, items: items) { t, i in counts[i] += 1; owners[i] = t }
            for i in 0..<items {
                XCTAssertEqual(counts[i], 1, "item \(i) of \(items), \(parts) parts")
                XCTAssertTrue((0..<parts).contains(owners[i]), "worker \(owners[i])")
            }
        }
        let items = 40
        let owners = UnsafeMutablePointer<Int>.allocate(capacity: items)
        defer { owners.deallocate() }
        var slept = false
        Parallel.dynamic(2, items: items) { t, i in
            if t == 0 && !slept { slept = true; usleep(200_000) }
            owners[i] = t
        }
        let byOne = (0..<items).filter { owners[$0] == 1 }.count
        XCTAssertGreaterThan(byOne, items / 2, "the free worker took over the held-up one's share: \(byOne) of \(items)")
    }

}

/// A value written by one thread and read by another after a semaphore or a join.
private final class Box<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}
