#ifndef MOCO_CPEAK_H
#define MOCO_CPEAK_H

/// The machine's fused-multiply-add peak, measured: `threads` POSIX threads at once, each running
/// independent chains of 8-wide single-precision FMAs (AVX2 + FMA, 12 accumulators: enough to
/// cover the FMA latency of 4-5 cycles on two ports) for about `seconds`, and where the CPU has
/// AVX-512 the same with 16-wide FMAs, keeping the faster; counting 2 FLOPs per lane per FMA.
/// Returns the summed GFLOP/s, or 0 if the CPU lacks AVX2 or FMA (then `moco_fma_peak_isa`
/// says so) or a thread could not be started.
double moco_fma_peak_gflops(int threads, double seconds);

/// "avx512f" or "avx2+fma": the widest instructions the probe runs; "none" when the CPU lacks them.
const char *moco_fma_peak_isa(void);

#endif
