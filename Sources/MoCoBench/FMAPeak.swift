import CPeak

/// The CPU's single-precision FMA peak, measured in the same run as a benchmark (`CPeak`): every
/// engine thread runs independent chains of 8-wide (AVX2) and, where present, 16-wide (AVX-512)
/// FMAs at once, the faster counted. The ceiling no kernel can pass;
/// against it a step's model GFLOP/s says how much of the machine the engine uses, where the
/// sgemm peak (`SgemmPeak`) says how it compares with OpenBLAS's best case.
public enum FMAPeak {
    /// Summed GFLOP/s of `threads` threads over about `seconds`; 0 when the CPU has no AVX2/FMA.
    public static func gflops(threads: Int, seconds: Double = 0.5) -> Double {
        moco_fma_peak_gflops(Int32(threads), seconds)
    }

    /// The widest instructions the probe runs ("avx512f" or "avx2+fma"), or "none".
    public static var isa: String { String(cString: moco_fma_peak_isa()) }
}
