#ifndef CCPUFEATURES_H
#define CCPUFEATURES_H

/// The x86-64 vector instruction-set level that this CPU *and* the operating system support
/// (the OS must save the wider registers, which `__builtin_cpu_supports` checks through XGETBV):
///   0: baseline (SSE2/SSE3), 1: AVX, 2: AVX2 + FMA, 3: AVX-512 F, CD, BW, DQ and VL
/// (the set OpenBLAS's SkylakeX kernels use). 0 on other architectures.
int moco_cpu_vector_level(void);

#endif
