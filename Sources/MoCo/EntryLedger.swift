/// Where each entry of a dictionary came from: for a queue column or a memory-bank row, the
/// dataset image, the epoch and global step of the write, and which crop (view 0 query, 1 key
/// of `TwoCropLoader`). Crops are a pure function of (seed, epoch, index, view), so the ledger
/// is enough to rebuild the exact crop an entry was computed from (`KeyConsistencyProbe`).
///
/// Bookkeeping only: no training value reads it, so a run is the same with or without one. It
/// is not checkpointed: after a resume it starts empty and fills as entries are rewritten
/// (after K / B steps for a queue; a bank row once its image is seen again). Every rank records
/// the same writes in the same order, so the ledgers are identical everywhere.
public final class EntryLedger {
    public struct Provenance: Equatable, Sendable {
        public var index: Int, epoch: Int
        /// Global steps completed before the step that wrote the entry (`StepInput.step`).
        public var step: Int
        public var view: Int
        /// The BatchNorm sub-batch the entry was encoded in: its index among the step's
        /// sub-batches and the entry's position in it (`KeyConsistencyProbe` re-encodes whole
        /// sub-batches, so that each entry is normalised with the same companions).
        public var chunk: Int, position: Int
        public init(index: Int, epoch: Int, step: Int, view: Int, chunk: Int = 0, position: Int = 0) {
            self.index = index; self.epoch = epoch; self.step = step; self.view = view
            self.chunk = chunk; self.position = position
        }
    }

    public let slots: Int
    private var index: [Int32], epoch: [Int32], step: [Int32], view: [Int8], chunk: [Int32], position: [Int32]

    /// A ledger of `slots` entries, all of unknown origin (the initial random keys or rows).
    public init(slots: Int) {
        precondition(slots > 0)
        self.slots = slots
        index = .init(repeating: -1, count: slots)
        epoch = .init(repeating: -1, count: slots)
        step = .init(repeating: -1, count: slots)
        view = .init(repeating: -1, count: slots)
        chunk = .init(repeating: -1, count: slots)
        position = .init(repeating: -1, count: slots)
    }

    public func record(slot: Int, _ p: Provenance) {
        index[slot] = Int32(p.index); epoch[slot] = Int32(p.epoch); step[slot] = Int32(p.step); view[slot] = Int8(p.view)
        chunk[slot] = Int32(p.chunk); position[slot] = Int32(p.position)
    }

    /// The origin of `slot`, or nil for an entry not written since the ledger began.
    public func provenance(_ slot: Int) -> Provenance? {
        index[slot] < 0 ? nil : Provenance(index: Int(index[slot]), epoch: Int(epoch[slot]), step: Int(step[slot]),
                                           view: Int(view[slot]), chunk: Int(chunk[slot]), position: Int(position[slot]))
    }

    /// The slots of known origin, in increasing order.
    public var knownSlots: [Int] { (0..<slots).filter { index[$0] >= 0 } }
}

/// The origin of the B entries one step writes: the global batch's dataset indices in rank
/// order (the order of the all-gathered keys), the epoch and the step.
public struct StepProvenance: Sendable {
    public var globalIndices: [Int]
    public var epoch: Int
    public var step: Int
    /// The step's shuffle-BN permutation (MoCo's keys).
    public var perm: [Int]? = nil
    public init(globalIndices: [Int], epoch: Int, step: Int) {
        self.globalIndices = globalIndices; self.epoch = epoch; self.step = step
    }

    /// The BatchNorm sub-batch of global batch position g: encoded at position j = π⁻¹(g) of
    /// the shuffled batch with shuffle-BN (`perm` = π), else at j = g; rank j / n computes it
    /// in split (j mod n) / s, so globally the sub-batches are the runs of s = n / splits
    /// consecutive positions j. -> (chunk j / s, position j mod s) for every g.
    public static func subBatches(perm: [Int]?, batch B: Int, subBatch s: Int) -> [(chunk: Int, position: Int)] {
        var j = Array(0..<B)
        if let perm { for (k, g) in perm.enumerated() { j[g] = k } }
        return j.map { ($0 / s, $0 % s) }
    }
}
