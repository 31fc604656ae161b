/// Chooses the communicator for this process.
public enum Communicators {
    /// Environment variables set by MPI launchers: Open MPI's mpirun (OMPI_COMM_WORLD_SIZE),
    /// PMIx-based launchers (PMIX_RANK) and PMI-1/2 launchers such as Slurm or Hydra (PMI_RANK).
    public static let launcherVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"]

    /// True if `environment` (the process's, passed by the program) says this process was
    /// started by an MPI launcher.
    public static func launchedByMPI(environment: [String: String]) -> Bool {
        launcherVariables.contains { environment[$0] != nil }
    }

    /// `MPICommunicator.initialize()` if launched by an MPI launcher, else a
    /// `SingleProcessCommunicator` (so the program runs without mpirun).
    public static func make(environment: [String: String]) throws -> Communicator {
        if launchedByMPI(environment: environment) { return try MPICommunicator.initialize() }
        return SingleProcessCommunicator()
    }

    /// Calls `finalize()` if `comm` is an `MPICommunicator`.
    public static func finalize(_ comm: Communicator) {
        (comm as? MPICommunicator)?.finalize()
    }
}
