// Winograd F(4x4, 3x3) convolution fused per row of tiles (CWinograd.h): for each group of 8
// samples and each row of output tiles, the input transform of that band, the 36 tile GEMMs and
// the output transform run on a block of a few hundred KiB that stays in L2, instead of each
// pass streaming the whole chunk's V and M through memory (and OpenBLAS zeroing M and packing V
// before it multiplies). The transforms are those of CWinograd.c, in the same order; the tile
// GEMM is one of the two kernels below: 8-float AVX2 accumulators, or 16-float AVX-512 ones on
// CPUs that have them. Both sum each output over c = 0, 1, ..., C-1 in order with one FMA per
// term, starting from zero, so they give the same bits; only how many outputs share a register
// differs.
#include "CWinograd.h"

#if defined(__x86_64__)
#include <string.h>
#include "avx2_inline.h"

int moco_winograd4_fused_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
}

#define FMA_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

// o[R, NC*8] = u[R, C] (rows `ldu` apart) @ v[C, NC*8] (rows `ldv` apart), R <= 4 rows of
// accumulators in registers, each a sum over c = 0, 1, ..., C-1 in that order with FMA.
#define TILE_GEMM(R, NC)                                                                          \
FMA_INLINE void gemm_##R##x##NC(const float *u, long ldu, const float *v, long ldv, long C,      \
                                float *o, long ldo) {                                             \
    lanes acc[R][NC];                                                                             \
    for (int r = 0; r < R; r++) for (int j = 0; j < NC; j++) acc[r][j] = _mm256_setzero_ps();    \
    for (long c = 0; c < C; c++) {                                                                \
        lanes b[NC];                                                                              \
        for (int j = 0; j < NC; j++) b[j] = ld(v + c * ldv + j * 8);                              \
        for (int r = 0; r < R; r++) {                                                             \
            lanes a = _mm256_broadcast_ss(u + r * ldu + c);                                       \
            for (int j = 0; j < NC; j++) acc[r][j] = _mm256_fmadd_ps(a, b[j], acc[r][j]);         \
        }                                                                                         \
    }                                                                                             \
    for (int r = 0; r < R; r++) for (int j = 0; j < NC; j++) st(o + r * ldo + j * 8, acc[r][j]); \
}
TILE_GEMM(4, 3) TILE_GEMM(4, 2) TILE_GEMM(4, 1)
TILE_GEMM(1, 3) TILE_GEMM(1, 2) TILE_GEMM(1, 1)

// Rows k0 ..< k0+R (R = 4 or 1) over all NB columns (a multiple of 8): blocks of 24 and 16
// columns, never a block of 8 beside others. A 4x1 block has 4 accumulators, too few to cover
// the FMA latency (4 cycles on 2 pipes), so 32 columns go as 16 + 16 rather than 24 + 8, and 56
// as 24 + 16 + 16. Each output is the same sum over c in order whatever the blocking.
#define ROW_BLOCK(R)                                                                              \
FMA_INLINE void rows_##R(const float *u, long C, const float *v, long NB, float *o) {           \
    long n8 = NB / 8, n = 0;                                                                      \
    if (n8 == 1) { gemm_##R##x1(u, C, v, NB, C, o, NB); return; }                                 \
    long twos = n8 % 3 == 0 ? 0 : n8 % 3 == 1 ? 2 : 1;                                            \
    for (long b = 0; b < (n8 - 2 * twos) / 3; b++, n += 24) gemm_##R##x3(u, C, v + n, NB, C, o + n, NB); \
    for (long b = 0; b < twos; b++, n += 16) gemm_##R##x2(u, C, v + n, NB, C, o + n, NB);         \
}
ROW_BLOCK(4) ROW_BLOCK(1)

// m: [K, NB] = u: [K, C] @ v: [C, NB] (NB a multiple of 8, everything contiguous).
FMA_INLINE void tile_gemm(const float *u, const float *v, float *m, long K, long C, long NB) {
    long k = 0;
    for (; k + 4 <= K; k += 4) rows_4(u + k * C, C, v, NB, m + k * NB);
    for (; k < K; k++) rows_1(u + k * C, C, v, NB, m + k * NB);
}

typedef void (*tile_gemm_fn)(const float *u, const float *v, float *m, long K, long C, long NB);

__attribute__((target("avx2,fma"))) static void tile_gemm_avx2(const float *u, const float *v, float *m, long K, long C, long NB) {
    tile_gemm(u, v, m, K, C, NB);
}

// ---- The AVX-512 tile GEMM: the same sums, 16 columns per register.

int moco_winograd4_fused_avx512_available(void) {
    __builtin_cpu_init();
    return moco_winograd4_fused_available() && __builtin_cpu_supports("avx512f") ? 1 : 0;
}

#define Z_INLINE static inline __attribute__((always_inline, target("avx512f,avx2,fma")))

// o[R, 16*NZ + 8*NY] = u[R, C] (rows `ldu` apart) @ v[C, 16*NZ + 8*NY] (rows `ldv` apart), with
// NZ 16-float and NY (0 or 1) 8-float accumulators per row; each output as in TILE_GEMM.
#define ZTILE_GEMM(R, NZ, NY)                                                                     \
Z_INLINE void zgemm_##R##x##NZ##_##NY(const float *u, long ldu, const float *v, long ldv, long C, \
                                     float *o, long ldo) {                                        \
    __m512 az[R][NZ + 1];                                                                         \
    __m256 ay[R];                                                                                 \
    for (int r = 0; r < R; r++) {                                                                 \
        for (int j = 0; j < NZ; j++) az[r][j] = _mm512_setzero_ps();                              \
        ay[r] = _mm256_setzero_ps();                                                              \
    }                                                                                             \
    for (long c = 0; c < C; c++) {                                                                \
        __m512 b[NZ + 1];                                                                         \
        __m256 by = _mm256_setzero_ps();                                                          \
        for (int j = 0; j < NZ; j++) b[j] = _mm512_loadu_ps(v + c * ldv + j * 16);                \
        if (NY) by = ld(v + c * ldv + NZ * 16);                                                   \
        for (int r = 0; r < R; r++) {                                                             \
            float s = u[r * ldu + c];                                                             \
            __m512 a = _mm512_set1_ps(s);                                                         \
            for (int j = 0; j < NZ; j++) az[r][j] = _mm512_fmadd_ps(a, b[j], az[r][j]);           \
            if (NY) ay[r] = _mm256_fmadd_ps(_mm256_set1_ps(s), by, ay[r]);                        \
        }                                                                                         \
    }                                                                                             \
    for (int r = 0; r < R; r++) {                                                                 \
        for (int j = 0; j < NZ; j++) _mm512_storeu_ps(o + r * ldo + j * 16, az[r][j]);            \
        if (NY) st(o + r * ldo + NZ * 16, ay[r]);                                                 \
    }                                                                                             \
}
#define ZTILE_GEMMS(R) ZTILE_GEMM(R, 3, 1) ZTILE_GEMM(R, 3, 0) ZTILE_GEMM(R, 2, 1) ZTILE_GEMM(R, 2, 0) \
                       ZTILE_GEMM(R, 1, 1) ZTILE_GEMM(R, 1, 0) ZTILE_GEMM(R, 0, 1)
ZTILE_GEMMS(8) ZTILE_GEMMS(4) ZTILE_GEMMS(1)

// Rows k0 ..< k0+R over all NB columns (a multiple of 8): blocks of 48 columns (3 x 16), then
// the rest (8 to 40) in one block. With R = 8 a block holds 8 to 24 accumulators of 32 registers.
// 56 columns (maps 25-28 wide) go in one block of 3 x 16 + 8 when R <= 4 (16 accumulators),
// rather than 48 + 8, whose second block has only R accumulators of 8 floats.
#define ZROW_BLOCK(R)                                                                             \
Z_INLINE void zrows_##R(const float *u, long C, const float *v, long NB, float *o) {            \
    long n = 0;                                                                                   \
    if (R <= 4 && NB == 56) { zgemm_##R##x3_1(u, C, v, NB, C, o, NB); return; }                  \
    for (; NB - n >= 48; n += 48) zgemm_##R##x3_0(u, C, v + n, NB, C, o + n, NB);                 \
    switch (NB - n) {                                                                             \
    case 40: zgemm_##R##x2_1(u, C, v + n, NB, C, o + n, NB); break;                               \
    case 32: zgemm_##R##x2_0(u, C, v + n, NB, C, o + n, NB); break;                               \
    case 24: zgemm_##R##x1_1(u, C, v + n, NB, C, o + n, NB); break;                               \
    case 16: zgemm_##R##x1_0(u, C, v + n, NB, C, o + n, NB); break;                               \
    case 8: zgemm_##R##x0_1(u, C, v + n, NB, C, o + n, NB); break;                                \
    default: break;                                                                               \
    }                                                                                             \
}
ZROW_BLOCK(8) ZROW_BLOCK(4) ZROW_BLOCK(1)

// m: [K, NB] = u: [K, C] @ v: [C, NB] (NB a multiple of 8, everything contiguous): rows in
// blocks of 8 (of 4 when NB = 56), then 4, then 1.
__attribute__((target("avx512f,avx2,fma"))) static void tile_gemm_avx512(const float *u, const float *v, float *m, long K, long C, long NB) {
    long k = 0;
    if (NB != 56) for (; k + 8 <= K; k += 8) zrows_8(u + k * C, C, v, NB, m + k * NB);
    for (; k + 4 <= K; k += 4) zrows_4(u + k * C, C, v, NB, m + k * NB);
    for (; k < K; k++) zrows_1(u + k * C, C, v, NB, m + k * NB);
}

long moco_winograd4_fused_workspace(long C, long K, long H, long W) {
    long tw = (W + 3) / 4, Wp = tw * 4 + 2, NB = tw * 8;
    return 36 * (C + K) * NB + 8 * (6 * Wp + 6 * Wp + 4 * tw * 4);
}

// The band loop of both kernels; `gemm` is the tile GEMM.
__attribute__((target("avx2,fma")))
static void fused_bands(const float *x, long N, long n0, long nb, long C, long K, long H, long W,
                        const float *u, float *y, float *ws, tile_gemm_fn gemm) {
    const long m = 4, A = 6, L = 8;
    long th = (H + m - 1) / m, tw = (W + m - 1) / m;
    long Wp = tw * m + 2, Wo = tw * m, HW = H * W, NB = tw * L;
    float *V = ws;                       // [36, C, NB]: the band's transformed input tiles
    float *M = V + 36 * C * NB;          // [36, K, NB]: their products with U
    float *pad = M + 36 * K * NB;        // [6, Wp] Lanes: the band's 6 zero-bordered input rows
    float *rows = pad + 6 * Wp * L;      // [6, Wp] Lanes: Bᵀ pad
    float *plane = rows + 6 * Wp * L;    // [4, Wo] Lanes: the band's output rows
    float tmp[4 * 6 * 8] __attribute__((aligned(32)));   // [m, α] Lanes
    long ldV = C * NB, ldM = K * NB;
    memset(pad, 0, sizeof(float) * 6 * Wp * L);           // the border columns stay zero
    for (long g = 0; g * L < nb; g++) {
        long count = nb - g * L < L ? nb - g * L : L;
        for (long ty = 0; ty < th; ty++) {
            // Input rows ty*4-1 ..< ty*4+5 of the maps (zero outside 0 ..< H) -> V.
            long r0 = ty * m - 1, lo = r0 < 0 ? 0 : r0, hi = r0 + A > H ? H : r0 + A;
            for (long i = 0; i < A; i++) {
                if (r0 + i < lo || r0 + i >= hi) memset(pad + (i * Wp + 1) * L, 0, sizeof(float) * W * L);
            }
            for (long c = 0; c < C; c++) {
                interleave_rows(x + (c * N + n0 + g * L) * HW + lo * W, HW, count, hi - lo, W,
                                pad + ((lo - r0) * Wp + 1) * L, Wp);
                // rows[6, Wp] = Bᵀ pad (every column at once); V[i*6 + j][c][tx] = (rows[i, tx*4 ..< tx*4 + 6] B)_j
                for (long col = 0; col < Wp; col++) input6(pad + col * L, Wp * L, rows + col * L, Wp * L);
                for (long i = 0; i < A; i++) {
                    float *dst = V + (i * A * C + c) * NB;
                    const float *line = rows + i * Wp * L;
                    for (long tx = 0; tx < tw; tx++) input6(line + tx * m * L, L, dst + tx * L, ldV);
                }
            }
            // M[ξ][K, NB] = U[ξ][K, C] @ V[ξ][C, NB]
            for (long xi = 0; xi < 36; xi++) gemm(u + xi * K * C, V + xi * ldV, M + xi * ldM, K, C, NB);
            // Y = Aᵀ M A per tile -> rows ty*4 ..< ty*4+4 (those inside H) of the maps.
            long out = H - ty * m < m ? H - ty * m : m;
            for (long k = 0; k < K; k++) {
                for (long tx = 0; tx < tw; tx++) {
                    const float *src = M + k * NB + tx * L;
                    for (long j = 0; j < A; j++) output6(src + j * ldM, A * ldM, tmp + j * L, A * L);
                    float *dst = plane + tx * m * L;
                    for (long i = 0; i < m; i++) output6(tmp + i * A * L, L, dst + i * Wo * L, L);
                }
                deinterleave_rows(plane, Wo, count, out, W, y + (k * N + n0 + g * L) * HW + ty * m * W, HW);
            }
        }
    }
}

void moco_winograd4_fused_avx2(const float *x, long N, long n0, long nb, long C, long K, long H, long W,
                               const float *u, float *y, float *ws) {
    fused_bands(x, N, n0, nb, C, K, H, W, u, y, ws, tile_gemm_avx2);
}

void moco_winograd4_fused_avx512(const float *x, long N, long n0, long nb, long C, long K, long H, long W,
                                 const float *u, float *y, float *ws) {
    fused_bands(x, N, n0, nb, C, K, H, W, u, y, ws, tile_gemm_avx512);
}

#else
int moco_winograd4_fused_available(void) { return 0; }
int moco_winograd4_fused_avx512_available(void) { return 0; }
void moco_winograd4_fused_avx512(const float *x, long N, long n0, long nb, long C, long K, long H, long W,
                                 const float *u, float *y, float *ws) {}
long moco_winograd4_fused_workspace(long C, long K, long H, long W) { return 0; }
void moco_winograd4_fused_avx2(const float *x, long N, long n0, long nb, long C, long K, long H, long W,
                               const float *u, float *y, float *ws) {}
#endif
