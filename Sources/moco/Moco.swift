import ArgumentParser
import Foundation
import MoCoTensor

@main
struct Moco: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "moco",
        abstract: "Distributed MoCo (momentum contrast) training on OpenMPI and OpenBLAS.",
        discussion: """
            Run under mpirun for data-parallel training (e.g. `mpirun -np 2 moco train --preset moco-v2`);
            without mpirun every command runs in one process.
            """,
        subcommands: [Train.self, Knn.self, Lincls.self, Embed.self, Init.self, ExportFolder.self, Replay.self, AugStats.self, Temperature.self, Memory.self, Bench.self])

    /// The memory and kernel settings checked, OpenBLAS's kernels for this CPU (may execute the program
    /// again), then the command.
    static func main() {
        let env = ProcessInfo.processInfo.environment
        if let problem = HugePages.problem(environment: env) ?? WinogradFused.problem(environment: env) {
            FileHandle.standardError.write(Data("error: \(problem)\n".utf8))
            Foundation.exit(2)
        }
        BLASCoreSelection.apply()
        main(nil)
    }
}
