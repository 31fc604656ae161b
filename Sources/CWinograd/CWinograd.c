// Winograd F(4x4, 3x3) transforms on AVX2 (CWinograd.h). The matrices are Lavin & Gray's
// (CVPR 2016) with the points 0, ±1, ±2, ∞, as in MoCoTensor/WinogradTransforms.swift, whose
// operation order each transform below repeats exactly (built with -ffp-contract=off).
// Kept in C: Swift cannot compile one function for AVX2 while the binary stays baseline x86-64.
#include "CWinograd.h"

#if defined(__x86_64__)
#include <string.h>

int moco_winograd4_avx2_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? 1 : 0;
}

#include "avx2_inline.h"

AVX2 void moco_winograd4_input_avx2(const float *x, long N, long n0, long nb, long C, long H, long W,
                                    float *V, float *pad, float *rows) {
    const long m = 4, A = 6, L = 8;
    long th = (H + m - 1) / m, tw = (W + m - 1) / m, tps = th * tw;
    long groups = (nb + L - 1) / L, TL = groups * tps;
    long Hp = th * m + 2, Wp = tw * m + 2, HW = H * W;
    memset(pad, 0, sizeof(float) * L * Hp * Wp);
    long ldV = C * TL * L;   // floats between the ξ planes of V
    for (long c = 0; c < C; c++) {
        for (long g = 0; g < groups; g++) {
            long count = nb - g * L < L ? nb - g * L : L;
            interleave(x + (c * N + n0 + g * L) * HW, count, H, W, pad + (Wp + 1) * L, Wp);
            for (long ty = 0; ty < th; ty++) {
                // rows[6, Wp] = Bᵀ pad[ty*4 ..< ty*4 + 6, :] (every column at once)
                const float *top = pad + ty * m * Wp * L;
                for (long col = 0; col < Wp; col++) input6(top + col * L, Wp * L, rows + col * L, Wp * L);
                // V[i*6 + j][c][tile] = (rows[i, tx*4 ..< tx*4 + 6] B)_j
                long t0 = g * tps + ty * tw;
                for (long i = 0; i < A; i++) {
                    float *dst = V + i * A * ldV + (c * TL + t0) * L;
                    const float *line = rows + i * Wp * L;
                    for (long tx = 0; tx < tw; tx++) input6(line + tx * m * L, L, dst + tx * L, ldV);
                }
            }
        }
    }
}

AVX2 void moco_winograd4_output_avx2(const float *M, long N, long n0, long nb, long K, long H, long W,
                                     float *y, float *plane) {
    const long m = 4, A = 6, L = 8;
    long th = (H + m - 1) / m, tw = (W + m - 1) / m, tps = th * tw;
    long groups = (nb + L - 1) / L, TL = groups * tps;
    long HW = H * W, Wo = tw * m;
    long ldM = K * TL * L;
    float tmp[4 * 6 * 8] __attribute__((aligned(32)));   // [m, α] Lanes
    for (long k = 0; k < K; k++) {
        for (long g = 0; g < groups; g++) {
            for (long ty = 0; ty < th; ty++) {
                for (long tx = 0; tx < tw; tx++) {
                    const float *src = M + (k * TL + g * tps + ty * tw + tx) * L;
                    // tmp[m, α] = Aᵀ M_tile (column j of the tile is ξ = i*6 + j over i)
                    for (long j = 0; j < A; j++) output6(src + j * ldM, A * ldM, tmp + j * L, A * L);
                    float *dst = plane + (ty * m * Wo + tx * m) * L;
                    for (long i = 0; i < m; i++) output6(tmp + i * A * L, L, dst + i * Wo * L, L);
                }
            }
            long count = nb - g * L < L ? nb - g * L : L;
            deinterleave(plane, Wo, count, H, W, y + (k * N + n0 + g * L) * HW);
        }
    }
}

AVX2 void moco_winograd4_dy_avx2(const float *dY, long N, long n0, long nb, long K, long H, long W,
                                 float *dM, float *plane) {
    const long m = 4, A = 6, L = 8;
    long th = (H + m - 1) / m, tw = (W + m - 1) / m, tps = th * tw;
    long groups = (nb + L - 1) / L, TL = groups * tps;
    long HW = H * W, Wo = tw * m;
    long ldM = K * TL * L;
    memset(plane, 0, sizeof(float) * L * th * m * Wo);
    float tmp[6 * 4 * 8] __attribute__((aligned(32)));   // [α, m] Lanes
    for (long k = 0; k < K; k++) {
        for (long g = 0; g < groups; g++) {
            long count = nb - g * L < L ? nb - g * L : L;
            interleave(dY + (k * N + n0 + g * L) * HW, count, H, W, plane, Wo);
            for (long ty = 0; ty < th; ty++) {
                for (long tx = 0; tx < tw; tx++) {
                    const float *src = plane + (ty * m * Wo + tx * m) * L;
                    // tmp[α, m] = A dY_tile (column by column)
                    for (long j = 0; j < m; j++) adjoint4(src + j * L, Wo * L, tmp + j * L, m * L);
                    // dM[i*6 + j][k][tile] = (tmp[i, :] Aᵀ)_j
                    float *dst = dM + (k * TL + g * tps + ty * tw + tx) * L;
                    for (long i = 0; i < A; i++) adjoint4(tmp + i * m * L, L, dst + i * A * ldM, ldM);
                }
            }
        }
    }
}

#else
int moco_winograd4_avx2_available(void) { return 0; }
void moco_winograd4_input_avx2(const float *x, long N, long n0, long nb, long C, long H, long W,
                               float *V, float *pad, float *rows) {}
void moco_winograd4_output_avx2(const float *M, long N, long n0, long nb, long K, long H, long W,
                                float *y, float *plane) {}
void moco_winograd4_dy_avx2(const float *dY, long N, long n0, long nb, long K, long H, long W,
                            float *dM, float *plane) {}
#endif
