// What the CPU can run, for choosing OpenBLAS's kernels (MoCoTensor/BLASCore.swift). Kept in C:
// Swift has no portable access to CPUID, and `__builtin_cpu_supports` also checks that the OS
// enables the AVX and AVX-512 register state.
#include "CCPUFeatures.h"

int moco_cpu_vector_level(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return 3;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 2;
    if (__builtin_cpu_supports("avx")) return 1;
#endif
    return 0;
}
