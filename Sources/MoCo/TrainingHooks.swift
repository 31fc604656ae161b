import SafeTensors

/// Calls into the training loop from outside it: the command line installs its fault injection
/// (`MOCO_FAIL_AT`, `MOCO_PERTURB_QUEUE_AT`, docs/distributed.md) through this, so tests can
/// exercise a distributed run's failure paths without test code in the loop.
public protocol TrainingHooks {
    /// Before global step `step` (1-based) runs on this rank; an error thrown here is this
    /// rank's alone (not agreed), as a crash would be.
    func beforeStep(_ step: Int, model: ContrastiveMethod) throws
    /// After global step `step` completed on this rank.
    func afterStep(_ step: Int, model: ContrastiveMethod)
    /// Before rank 0 writes checkpoint `w` to `path`.
    func willWrite(_ w: SafeTensorsWriter, to path: String) throws
}

/// No hooks: a normal run.
public struct NoTrainingHooks: TrainingHooks {
    public init() {}
    public func beforeStep(_ step: Int, model: ContrastiveMethod) throws {}
    public func afterStep(_ step: Int, model: ContrastiveMethod) {}
    public func willWrite(_ w: SafeTensorsWriter, to path: String) throws {}
}
