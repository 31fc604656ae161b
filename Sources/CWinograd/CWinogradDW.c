// The weight gradient's GEMMs in the Winograd domain on AVX2 + FMA (CWinograd.h,
// moco_gemm_abt_avx2): dU[ξ][K, C] (+)= dM[ξ][K, T] @ V[ξ][C, T]ᵀ with a short output
// (16-64 x 16-64) and a long reduction (T = hundreds to thousands of tile lanes). OpenBLAS packs
// both operands whole before its kernel runs, which there costs about as much as the
// multiplications (`perf`: sgemm_oncopy + sgemm_incopy 4.2% of a ResNet-20 step against 5.8%
// for its kernel). Here the operands' rows are read in place, 8 lanes of T at a time.
#include "CWinograd.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define FMA_INLINE static inline __attribute__((always_inline, target("avx2,fma")))
#define FMA_FN __attribute__((target("avx2,fma")))
typedef __m256 lanes;

// The sum of v's 8 lanes: ((v0 + v4) + (v2 + v6)) + ((v1 + v5) + (v3 + v7)).
FMA_INLINE float hsum(lanes v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// c[MR, NR] (+)= a[MR, T] @ b[NR, T]ᵀ, rows lda / ldb apart, T a multiple of 8: MR·NR
// accumulators of 8 lanes, lane l summing the products at t ≡ l (mod 8) in order of t, then
// each accumulator's lanes summed (hsum).
#define BLOCK(MR, NR)                                                                             \
FMA_INLINE void block_##MR##x##NR(const float *a, long lda, const float *b, long ldb, long T,   \
                                  float *c, long ldc, int accumulate) {                          \
    lanes acc[MR][NR];                                                                           \
    _Pragma("clang loop unroll(full)")                                                           \
    for (int i = 0; i < MR; i++)                                                                 \
        _Pragma("clang loop unroll(full)")                                                       \
        for (int j = 0; j < NR; j++) acc[i][j] = _mm256_setzero_ps();                            \
    for (long t = 0; t < T; t += 8) {                                                            \
        lanes bv[NR];                                                                            \
        _Pragma("clang loop unroll(full)")                                                       \
        for (int j = 0; j < NR; j++) bv[j] = _mm256_loadu_ps(b + j * ldb + t);                   \
        _Pragma("clang loop unroll(full)")                                                       \
        for (int i = 0; i < MR; i++) {                                                           \
            lanes av = _mm256_loadu_ps(a + i * lda + t);                                         \
            _Pragma("clang loop unroll(full)")                                                   \
            for (int j = 0; j < NR; j++) acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);      \
        }                                                                                        \
    }                                                                                            \
    _Pragma("clang loop unroll(full)")                                                           \
    for (int i = 0; i < MR; i++)                                                                 \
        _Pragma("clang loop unroll(full)")                                                       \
        for (int j = 0; j < NR; j++) {                                                           \
            float s = hsum(acc[i][j]);                                                           \
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + s : s;                                \
        }                                                                                        \
}
BLOCK(4, 3) BLOCK(4, 2) BLOCK(4, 1)
BLOCK(3, 3) BLOCK(3, 2) BLOCK(3, 1)
BLOCK(2, 3) BLOCK(2, 2) BLOCK(2, 1)
BLOCK(1, 3) BLOCK(1, 2) BLOCK(1, 1)

// Rows i ..< i+MR of c, all N columns in blocks of 3 (the last 1 or 2).
#define ROWS(MR)                                                                                  \
FMA_INLINE void rows_##MR(const float *a, long lda, const float *b, long ldb, long N, long T,   \
                          float *c, long ldc, int accumulate) {                                  \
    long j = 0;                                                                                  \
    for (; j + 3 <= N; j += 3) block_##MR##x3(a, lda, b + j * ldb, ldb, T, c + j, ldc, accumulate); \
    if (N - j == 2) block_##MR##x2(a, lda, b + j * ldb, ldb, T, c + j, ldc, accumulate);         \
    else if (N - j == 1) block_##MR##x1(a, lda, b + j * ldb, ldb, T, c + j, ldc, accumulate);    \
}
ROWS(4) ROWS(3) ROWS(2) ROWS(1)

FMA_FN void moco_gemm_abt_avx2(const float *a, long lda, const float *b, long ldb, long M, long N, long T,
                               float *c, long ldc, int accumulate) {
    long i = 0;
    for (; i + 4 <= M; i += 4) rows_4(a + i * lda, lda, b, ldb, N, T, c + i * ldc, ldc, accumulate);
    switch (M - i) {
    case 3: rows_3(a + i * lda, lda, b, ldb, N, T, c + i * ldc, ldc, accumulate); break;
    case 2: rows_2(a + i * lda, lda, b, ldb, N, T, c + i * ldc, ldc, accumulate); break;
    case 1: rows_1(a + i * lda, lda, b, ldb, N, T, c + i * ldc, ldc, accumulate); break;
    default: break;
    }
}

#else
void moco_gemm_abt_avx2(const float *a, long lda, const float *b, long ldb, long M, long N, long T,
                        float *c, long ldc, int accumulate) {}
#endif
