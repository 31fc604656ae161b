import MoCoTensor
import MoCoLayers
import MoCoOptim
import MoCoComm
import SafeTensors

/// What one training step receives: this rank's two crops of its slice of the global batch and
/// where the step sits in the run.
public struct StepInput {
    /// imQ, imK: [n, C, H, W], this rank's contiguous slice of the global batch.
    public var imQ: UnsafePointer<Float>
    public var imK: UnsafePointer<Float>
    /// Dataset indices of the n samples (the memory bank's rows).
    public var indices: [Int]
    /// The shuffle-BN permutation of the global batch (`ShuffleBN.permutation`).
    public var perm: [Int]
    public var lr: Float
    /// Global steps completed before this one (0 for the first step of a run).
    public var step: Int
    /// Fraction of the run completed before this step, fractional epoch / epochs (MoCo v3's
    /// momentum schedule).
    public var progress: Double
    /// The epoch of the step (0-based): with `indices`, where its crops came from (`EntryLedger`).
    public var epoch: Int

    public init(imQ: UnsafePointer<Float>, imK: UnsafePointer<Float>, indices: [Int], perm: [Int], lr: Float, step: Int,
                progress: Double = 0, epoch: Int = 0) {
        self.imQ = imQ; self.imK = imK; self.indices = indices; self.perm = perm; self.lr = lr; self.step = step
        self.progress = progress; self.epoch = epoch
    }
}

/// A contrastive training method on one rank of a data-parallel job: a query encoder trained by
/// SGD and whatever supplies its positives and negatives (`Mechanism`). Every collective goes
/// through `comm`; after each step, the state that `sharedState` names is identical on every
/// rank.
public protocol ContrastiveMethod: AnyObject {
    var config: MoCoConfig { get }
    var comm: Communicator { get }
    /// Where each step's phases go (`--timeline`); nil: nowhere. Changes no value.
    var timeline: Timeline? { get set }
    /// The trained encoder: saved as `encoder_q.*`, evaluated by the kNN monitor.
    var query: Encoder { get }
    /// SGD or LARS over `query.params` (`--optimizer`).
    var optimizer: Optimizer { get }
    /// Plans every buffer for a local batch of `n` images of c x h x w.
    func plan(localBatch n: Int, channels c: Int, height h: Int, width w: Int)
    func step(_ input: StepInput) throws -> StepResult
    /// Checkpoint tensors beyond `encoder_q.*` and SGD's momentum buffers.
    func addState(to w: inout SafeTensorsWriter)
    /// Checks that `f` holds this method's tensors with the right shapes (nothing is changed).
    func validateState(_ f: SafeTensorsFile) throws
    /// Loads them (after `validateState`).
    func loadState(_ f: SafeTensorsFile) throws
    /// Checksums of the state every rank must hold identically (queue, bank, weights), by name.
    var sharedState: [(name: String, checksum: Double)] { get }
    /// Changes one value of the shared state (fault injection: `--check-consistency` must notice).
    func perturbSharedState()
}

extension ContrastiveMethod {
    /// The weighted sum Σ_i p[i]·(i mod 7 + 1) in Double: differs for any single changed value
    /// and for swapped values, and costs one pass.
    static func checksum(_ p: UnsafePointer<Float>, _ n: Int) -> Double {
        var s = 0.0
        for i in 0..<n { s += Double(p[i]) * Double(i % 7 + 1) }
        return s
    }
}

/// Builds the method that `config.mechanism` names.
public enum Methods {
    /// - Parameters:
    ///   - inChannels: channels of the images; datasetCount: training images (the bank's rows,
    ///     NCE's noise distribution 1/N).
    public static func make(config: MoCoConfig, inChannels: Int, datasetCount: Int, engine: EngineConfig = EngineConfig(),
                            seed: UInt64, comm: Communicator) -> ContrastiveMethod {
        switch config.mechanism {
        case .moco:
            return MoCoModel(config: config, inChannels: inChannels, engine: engine, seed: seed, comm: comm,
                             datasetCount: datasetCount)
        case .memoryBank:
            return MemoryBankMethod(config: config, inChannels: inChannels, datasetCount: datasetCount, engine: engine,
                                    seed: seed, comm: comm)
        case .endToEnd:
            return EndToEndMethod(config: config, inChannels: inChannels, engine: engine, seed: seed, comm: comm)
        case .mocoV3:
            return MoCoV3Method(config: config, inChannels: inChannels, engine: engine, seed: seed, comm: comm)
        }
    }
}
