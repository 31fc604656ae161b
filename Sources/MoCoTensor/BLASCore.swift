import CBLAS
import CCPUFeatures

/// Which of OpenBLAS's kernel sets ("cores") runs the GEMMs, and the one this CPU should run.
///
/// OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels from the CPU's family and model
/// numbers when the library loads. A CPU newer than the library is not in its table and gets the
/// baseline kernels: Debian bookworm's OpenBLAS 0.3.21 names a 5th-generation Xeon (Emerald
/// Rapids, family 6 model 207, AVX-512) "Prescott" and runs SSE3 kernels, 70-74 GFLOP/s for a
/// 2048³ sgemm on 2 cores where its SkylakeX kernels reach 366-387 (docs/performance.md). OpenBLAS's
/// documented override is the environment variable OPENBLAS_CORETYPE, read at load time only, so
/// the `moco` executable sets it and executes itself again before anything else runs
/// (`moco/BLASCoreSelection.swift`, which also says so once on rank 0's stderr); this type holds
/// the decision, which is pure and tested.
public enum BLASCore {
    /// The name OpenBLAS reports for the kernels it runs (e.g. "Haswell", "SkylakeX", "Prescott").
    public static var current: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// The vector instruction-set level of this CPU and OS: 0 baseline, 1 AVX, 2 AVX2 + FMA,
    /// 3 AVX-512 (F, CD, BW, DQ, VL).
    public static var cpuVectorLevel: Int { Int(moco_cpu_vector_level()) }

    /// The vector level of an OpenBLAS 0.3 x86-64 kernel set, by the name `openblas_get_corename`
    /// gives; nil for a name not known here (a newer library's: left alone).
    public static func vectorLevel(ofCore name: String) -> Int? {
        switch name.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": return 3
        case "haswell", "zen", "excavator": return 2
        case "sandybridge", "bulldozer", "piledriver", "steamroller": return 1
        case "prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "nano", "katmai", "coppermine",
             "northwood", "banias", "athlon", "opteron", "opteron_sse3", "barcelona", "bobcat":
            return 0
        default: return nil
        }
    }

    /// The kernel set to request instead of `core` on a CPU of vector level `cpuLevel`, or nil to
    /// keep OpenBLAS's choice. Only a known set below the CPU's level is replaced, by the set of
    /// the CPU's level that OpenBLAS 0.3 names: SkylakeX (AVX-512), Haswell (AVX2 + FMA),
    /// Sandybridge (AVX). A core OpenBLAS knows (e.g. Zen on an AMD Zen 3) is never replaced.
    public static func replacement(for core: String, cpuLevel: Int) -> String? {
        guard let have = vectorLevel(ofCore: core), cpuLevel > have else { return nil }
        switch cpuLevel {
        case 3...: return "SkylakeX"
        case 2: return "Haswell"
        case 1: return "Sandybridge"
        default: return nil
        }
    }

    /// What `moco` does at start-up, given its environment (`OPENBLAS_CORETYPE` set by the user
    /// wins; `MOCO_BLAS_CORE=keep` keeps OpenBLAS's choice; `MOCO_BLAS_CORE_DETECTED` marks a
    /// process that was already re-executed, so there is never a second time).
    public enum Decision: Equatable, Sendable {
        case keep
        /// Set OPENBLAS_CORETYPE to `core` and execute again (OpenBLAS detected `detected`).
        case reexecute(core: String, detected: String)
    }

    public static func decide(environment env: [String: String], core: String, cpuLevel: Int) -> Decision {
        if env["OPENBLAS_CORETYPE"] != nil || env["MOCO_BLAS_CORE_DETECTED"] != nil { return .keep }
        if let v = env["MOCO_BLAS_CORE"], v == "keep" { return .keep }
        guard let r = replacement(for: core, cpuLevel: cpuLevel) else { return .keep }
        return .reexecute(core: r, detected: core)
    }
}
