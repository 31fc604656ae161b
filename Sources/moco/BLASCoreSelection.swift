import Foundation
import MoCoTensor

/// Start-up: run OpenBLAS's kernels for this CPU's instruction set when the library did not
/// recognise the CPU (`BLASCore`): set OPENBLAS_CORETYPE, OpenBLAS's own override, and execute
/// this program again with the same arguments and environment before anything else has run
/// (no file opened, no MPI initialised; under mpirun the process keeps its pid and environment).
/// A user's OPENBLAS_CORETYPE is respected, `MOCO_BLAS_CORE=keep` turns this off, and a failed
/// exec only warns and goes on with OpenBLAS's choice.
enum BLASCoreSelection {
    static func apply() {
        let env = ProcessInfo.processInfo.environment
        if let v = env["MOCO_BLAS_CORE"], v != "auto" && v != "keep" {
            FileHandle.standardError.write(Data("error: MOCO_BLAS_CORE='\(v)' must be auto (the default) or keep\n".utf8))
            exit(2)
        }
        guard case .reexecute(let core, let detected) = BLASCore.decide(environment: env, core: BLASCore.current,
                                                                         cpuLevel: BLASCore.cpuVectorLevel)
        else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv("MOCO_BLAS_CORE_DETECTED", detected, 1)
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // Only reached if the exec failed: carry on with the kernels OpenBLAS chose.
        let reason = String(cString: strerror(errno))
        unsetenv("OPENBLAS_CORETYPE")
        unsetenv("MOCO_BLAS_CORE_DETECTED")
        FileHandle.standardError.write(Data(
            "warning: OpenBLAS runs its \(detected) kernels on this CPU; re-executing with OPENBLAS_CORETYPE=\(core) failed (\(reason))\n".utf8))
    }

    /// After a re-execution: one line on stderr naming both kernel sets (rank 0, every command).
    static func report(environment env: [String: String]) {
        guard let detected = env["MOCO_BLAS_CORE_DETECTED"] else { return }
        FileHandle.standardError.write(Data(
            "moco: OpenBLAS detected this CPU as \(detected); running its \(BLASCore.current) kernels (MOCO_BLAS_CORE=keep keeps \(detected))\n".utf8))
    }
}
