import Foundation
import MoCoTensor

/// Items 0..<n handed to `threads` workers one at a time from a shared counter (for work whose
/// cost varies by orders of magnitude between items, such as decoding a thumbnail or a photo).
/// Each worker makes its scratch state once with `makeState`. After an item fails no further
/// items are handed out; the error of the lowest failing index (among those tried) is thrown.
func forEachItem<State>(_ n: Int, threads: Int, state makeState: () -> State,
                        _ body: (inout State, Int) throws -> Void) throws {
    guard n > 0 else { return }
    let lock = NSLock()
    var next = 0
    var failure: (index: Int, error: Error)?
    Parallel.run(max(1, min(threads, n))) { _ in
        var state = makeState()
        while true {
            lock.lock()
            let i = next
            next += 1
            let stop = failure != nil
            lock.unlock()
            if i >= n || stop { return }
            do { try body(&state, i) } catch {
                lock.lock()
                if failure.map({ i < $0.index }) ?? true { failure = (i, error) }
                lock.unlock()
            }
        }
    }
    if let failure { throw failure.error }
}
