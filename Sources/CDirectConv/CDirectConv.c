// Direct convolution on AVX2 + FMA (CDirectConv.h). Kept in C: Swift cannot compile one function
// for AVX2 + FMA while the binary stays baseline x86-64 (target attributes here).
#include "CDirectConv.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

int moco_direct_conv_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
}

#define FMA_INLINE static inline __attribute__((always_inline, target("avx2,fma")))
#define FMA_FN __attribute__((target("avx2,fma")))
typedef __m256 lanes;

/// The tiling: R output rows of V floats (R = 2, V = 8 when Wo <= 8, else R = 1, V = 16·⌈Wo/16⌉),
/// and the phase planes' extent: Hp rows (every row a tile reads, padding included) of Qw floats.
typedef struct { long Ho, Wo, R, V, HoR, Hp, Qw, phases, plane; } Tiling;

/// Columns of a tile row: 8 (two rows per tile) when Wo <= 8, else whole blocks of 16.
static long tile_width(long Wo) { return Wo <= 8 ? 8 : 16 * ((Wo + 15) / 16); }

static Tiling tiling(long H, long W, long k, long s, long p) {
    Tiling t;
    t.Ho = (H + 2 * p - k) / s + 1; t.Wo = (W + 2 * p - k) / s + 1;
    t.R = t.Wo <= 8 ? 2 : 1;
    t.V = tile_width(t.Wo);
    t.HoR = t.R * ((t.Ho + t.R - 1) / t.R);
    long reach = (t.HoR - 1) * s + k;
    t.Hp = H + 2 * p > reach ? H + 2 * p : reach;
    t.Qw = t.V + (k - 1) / s;
    t.phases = s < k ? s : k;
    t.plane = t.Hp * t.Qw;
    return t;
}

long moco_direct_conv_utilization(long Wo) { return 100 * Wo / tile_width(Wo); }

long moco_direct_conv_workspace(long C, long H, long W, long k, long s, long p) {
    Tiling t = tiling(H, W, k, s, p);
    return C * t.phases * t.plane;
}

/// Output channels of the block that starts with `rem` channels left: 6, except 4 + 4 for the
/// last 8 (K = 32 = 6·4 + 4 + 4 rather than 6·5 + 2: a 2-channel tile has 4 accumulators, too
/// few to cover the FMA latency of 4 cycles on 2 pipes).
static inline long block_size(long rem) { return rem == 8 ? 4 : rem < 6 ? rem : 6; }

void moco_direct_conv_pack_filter(const float *w, long K, long C, long k, float *wp) {
    long taps = C * k * k;
    for (long k0 = 0, kb; k0 < K; k0 += kb) {
        kb = block_size(K - k0);
        float *blk = wp + k0 * taps;
        for (long t = 0; t < taps; t++)
            for (long r = 0; r < kb; r++) blk[t * kb + r] = w[(k0 + r) * taps + t];
    }
}

/// P[r + p][c][φ][q] = x[c][r][q·s + φ - p] for the positions inside the map; the rest of the
/// planes stays as it was (zero: the caller clears the planes once per call).
FMA_INLINE void split_phases(const float *x, long N, long n, long C, long H, long W, long s, long p,
                             const Tiling *t, float *P) {
    for (long c = 0; c < C; c++) {
        const float *xc = x + (c * N + n) * H * W;
        for (long phase = 0; phase < t->phases; phase++) {
            long last = W - 1 + p - phase;
            if (last < 0) continue;
            long qLo = (p - phase + s - 1) / s; if (qLo < 0) qLo = 0;
            long qHi = last / s + 1; if (qHi > t->Qw) qHi = t->Qw;
            for (long r = 0; r < H; r++) {
                const float *src = xc + r * W + qLo * s + phase - p;
                float *dst = P + (((r + p) * C + c) * t->phases + phase) * t->Qw;
                if (s == 1) { memcpy(dst + qLo, src, (size_t)(qHi - qLo) * sizeof(float)); continue; }
                long q = qLo;
                if (s == 2) {
                    // 8 at a time: the even lanes of 16 consecutive floats, in order.
                    for (; q + 8 <= qHi && (q - qLo) * 2 + 16 <= W - (qLo * 2 + phase - p); q += 8, src += 16) {
                        lanes a = _mm256_loadu_ps(src), b = _mm256_loadu_ps(src + 8);
                        lanes e = _mm256_shuffle_ps(a, b, 0x88);   // a0 a2 b0 b2 | a4 a6 b4 b6
                        _mm256_storeu_ps(dst + q, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8)));
                    }
                }
                for (; q < qHi; q++, src += s) dst[q] = *src;
            }
        }
    }
}

/// dst[0 ..< n] = the first n lanes of v (n in 1...8); no masked store (microcoded on Zen).
FMA_INLINE void store_first(float *dst, lanes v, long n) {
    if (n == 8) { _mm256_storeu_ps(dst, v); return; }
    __m128 h = _mm256_castps256_ps128(v);
    if (n >= 4) { _mm_storeu_ps(dst, h); h = _mm256_extractf128_ps(v, 1); dst += 4; n -= 4; }
    if (n >= 2) { _mm_storel_pi((__m64 *)dst, h); h = _mm_movehl_ps(h, h); dst += 2; n -= 2; }
    if (n == 1) _mm_store_ss(dst, h);
}

/// Where a tile's two vectors go: rows oy (and oy + 1 when R = 2) of each output channel, or
/// columns col ..< col + 16 of row oy (R = 1); only positions inside the Ho x Wo map are stored.
typedef struct { long R, Ho, Wo, oy, col, ldk; } Put;

FMA_INLINE void put_tile(float *yr, lanes a0, lanes a1, const Put *u) {
    if (u->R == 2) {
        store_first(yr + u->oy * u->Wo, a0, u->Wo);
        if (u->oy + 1 < u->Ho) store_first(yr + (u->oy + 1) * u->Wo, a1, u->Wo);
        return;
    }
    long left = u->Wo - u->col;
    if (left <= 0) return;
    store_first(yr + u->oy * u->Wo + u->col, a0, left < 8 ? left : 8);
    if (left > 8) store_first(yr + u->oy * u->Wo + u->col + 8, a1, left - 8 < 8 ? left - 8 : 8);
}

/// One tile of KB output channels x 2 vectors, in registers:
/// a[r][v] = Σ_c Σ_(i,j) wp[c, i·k + j, r] · P[row_v + i][c][j mod s][col_v + ⌊j/s⌋ ...+8], in
/// that order, with FMA. P: phase planes (`cstride` floats per channel within a row), taps[t]: offset of tap
/// t, off0/off1: offset of each vector's first tap; wp: [C, k·k, KB] -> y: channel r at yk + r·ldk.
#define TILE(KB)                                                                                  \
FMA_INLINE void tile_##KB(const float *P, long C, long cstride, const long *taps, long kk,      \
                          long off0, long off1, const float *wp, float *yk, const Put *u) {      \
    lanes a0[KB], a1[KB];                                                                        \
    _Pragma("clang loop unroll(full)")                                                           \
    for (int r = 0; r < KB; r++) { a0[r] = _mm256_setzero_ps(); a1[r] = _mm256_setzero_ps(); }  \
    for (long c = 0; c < C; c++) {                                                               \
        const float *pc = P + c * cstride;                                                       \
        for (long t = 0; t < kk; t++) {                                                          \
            const float *q = pc + taps[t];                                                       \
            lanes x0 = _mm256_loadu_ps(q + off0), x1 = _mm256_loadu_ps(q + off1);                \
            _Pragma("clang loop unroll(full)")                                                   \
            for (int r = 0; r < KB; r++) {                                                       \
                lanes b = _mm256_broadcast_ss(wp + r);                                           \
                a0[r] = _mm256_fmadd_ps(b, x0, a0[r]);                                           \
                a1[r] = _mm256_fmadd_ps(b, x1, a1[r]);                                           \
            }                                                                                    \
            wp += KB;                                                                            \
        }                                                                                        \
    }                                                                                            \
    _Pragma("clang loop unroll(full)")                                                           \
    for (int r = 0; r < KB; r++) put_tile(yk + r * u->ldk, a0[r], a1[r], u);                     \
}
TILE(6) TILE(5) TILE(4) TILE(3) TILE(2) TILE(1)

FMA_FN void moco_direct_conv_avx2(const float *x, long N, long n0, long nb, long C, long H, long W,
                                  long K, long k, long s, long p, const float *wp, float *y, float *ws) {
    Tiling t = tiling(H, W, k, s, p);
    long kk = k * k, cstride = t.phases * t.Qw, rowstride = C * cstride, HoWo = t.Ho * t.Wo;
    long taps[64];   // k·k offsets; k <= 8
    for (long i = 0; i < k; i++)
        for (long j = 0; j < k; j++) taps[i * k + j] = i * rowstride + (j % s) * t.Qw + j / s;
    memset(ws, 0, (size_t)(t.Hp * rowstride) * sizeof(float));
    for (long n = n0; n < n0 + nb; n++) {
        split_phases(x, N, n, C, H, W, s, p, &t, ws);
        for (long k0 = 0, kb; k0 < K; k0 += kb) {
            kb = block_size(K - k0);
            const float *wk = wp + k0 * C * kk;
            float *yk = y + (k0 * N + n) * HoWo;
            long ldk = N * HoWo;
            for (long oy = 0; oy < t.HoR; oy += t.R) {
                for (long col = 0; col < t.V; col += 16 / t.R) {
                    long off0, off1;
                    if (t.R == 2) { off0 = oy * s * rowstride; off1 = (oy + 1) * s * rowstride; }
                    else { off0 = oy * s * rowstride + col; off1 = off0 + 8; }
                    Put u = { t.R, t.Ho, t.Wo, oy, col, ldk };
                    switch (kb) {
                    case 6: tile_6(ws, C, cstride, taps, kk, off0, off1, wk, yk, &u); break;
                    case 5: tile_5(ws, C, cstride, taps, kk, off0, off1, wk, yk, &u); break;
                    case 4: tile_4(ws, C, cstride, taps, kk, off0, off1, wk, yk, &u); break;
                    case 3: tile_3(ws, C, cstride, taps, kk, off0, off1, wk, yk, &u); break;
                    case 2: tile_2(ws, C, cstride, taps, kk, off0, off1, wk, yk, &u); break;
                    default: tile_1(ws, C, cstride, taps, kk, off0, off1, wk, yk, &u); break;
                    }
                }
            }
        }
    }
}

#else
int moco_direct_conv_available(void) { return 0; }
long moco_direct_conv_utilization(long Wo) { return 0; }
long moco_direct_conv_workspace(long C, long H, long W, long k, long s, long p) { return 0; }
void moco_direct_conv_pack_filter(const float *w, long K, long C, long k, float *wp) {}
void moco_direct_conv_avx2(const float *x, long N, long n0, long nb, long C, long H, long W,
                           long K, long k, long s, long p, const float *wp, float *y, float *ws) {}
#endif
