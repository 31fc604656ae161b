// The AVX2 building blocks of CWinograd.c and CWinogradFused.c: the F(4x4, 3x3) transforms of
// 6 (or 4) Lanes and the interleaving of 8 samples' maps into Lanes. Private to this target.
#ifndef CWINOGRAD_AVX2_INLINE_H
#define CWINOGRAD_AVX2_INLINE_H
#if defined(__x86_64__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2")))
#define INLINE static inline __attribute__((always_inline, target("avx2")))
typedef __m256 lanes;

INLINE lanes ld(const float *p) { return _mm256_loadu_ps(p); }
INLINE void st(float *p, lanes v) { _mm256_storeu_ps(p, v); }
INLINE lanes mulc(float c, lanes v) { return _mm256_mul_ps(_mm256_set1_ps(c), v); }
#define ADD _mm256_add_ps
#define SUB _mm256_sub_ps

// Bᵀ d: d: [6] Lanes at stride ds (floats) -> o: [6] at stride os.
INLINE void input6(const float *d, long ds, float *o, long os) {
    lanes d0 = ld(d), d1 = ld(d + ds), d2 = ld(d + 2 * ds), d3 = ld(d + 3 * ds), d4 = ld(d + 4 * ds), d5 = ld(d + 5 * ds);
    lanes a = SUB(d4, mulc(4, d2)), b = SUB(d3, mulc(4, d1));
    lanes c = SUB(d4, d2), e = mulc(2, SUB(d3, d1));
    st(o, ADD(SUB(mulc(4, d0), mulc(5, d2)), d4));
    st(o + os, ADD(a, b));
    st(o + 2 * os, SUB(a, b));
    st(o + 3 * os, ADD(c, e));
    st(o + 4 * os, SUB(c, e));
    st(o + 5 * os, ADD(SUB(mulc(4, d1), mulc(5, d3)), d5));
}

// Aᵀ v: v: [6] at stride vs -> o: [4] at stride os.
INLINE void output6(const float *v, long vs, float *o, long os) {
    lanes v0 = ld(v), v1 = ld(v + vs), v2 = ld(v + 2 * vs), v3 = ld(v + 3 * vs), v4 = ld(v + 4 * vs), v5 = ld(v + 5 * vs);
    lanes p12 = ADD(v1, v2), m12 = SUB(v1, v2), p34 = ADD(v3, v4), m34 = SUB(v3, v4);
    st(o, ADD(ADD(v0, p12), p34));
    st(o + os, ADD(m12, mulc(2, m34)));
    st(o + 2 * os, ADD(p12, mulc(4, p34)));
    st(o + 3 * os, ADD(ADD(m12, mulc(8, m34)), v5));
}

// A dy: dy: [4] at stride ys -> o: [6] at stride os (the adjoint of output6).
INLINE void adjoint4(const float *dy, long ys, float *o, long os) {
    lanes y0 = ld(dy), y1 = ld(dy + ys), y2 = ld(dy + 2 * ys), y3 = ld(dy + 3 * ys);
    lanes p = ADD(y0, y2), q = ADD(y1, y3);
    lanes r = ADD(y0, mulc(4, y2)), t = ADD(mulc(2, y1), mulc(8, y3));
    st(o, y0);
    st(o + os, ADD(p, q));
    st(o + 2 * os, SUB(p, q));
    st(o + 3 * os, ADD(r, t));
    st(o + 4 * os, SUB(r, t));
    st(o + 5 * os, y3);
}

// r[8] (8 floats each) -> r[j][l] = old r[l][j]: an 8x8 transpose (values only move).
INLINE void transpose8(lanes r[8]) {
    lanes t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    lanes t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    lanes t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    lanes t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    lanes s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    lanes s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    lanes s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    lanes s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20); r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20); r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31); r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31); r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// Mask of the first n (0..8) of 8 lanes, for masked loads.
INLINE __m256i first(long n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// p[0 ..< n] = v[0 ..< n] (n in 1...8) with plain stores of 8, 4, 2 and 1 floats. Not
// _mm256_maskstore_ps: on AMD's Zen cores a masked store is microcoded, and these stores were
// 5% of a ResNet-20 step's samples on a Zen 3 EPYC. The floats stored are the same.
INLINE void st_first(float *p, lanes v, long n) {
    if (n == 8) { st(p, v); return; }
    __m128 h = _mm256_castps256_ps128(v);
    if (n >= 4) { _mm_storeu_ps(p, h); h = _mm256_extractf128_ps(v, 1); p += 4; n -= 4; }
    if (n >= 2) { _mm_storel_pi((__m64 *)p, h); h = _mm_movehl_ps(h, h); p += 2; n -= 2; }
    if (n == 1) _mm_store_ss(p, h);
}

// v[0 ..< n] = p[0 ..< n], the other lanes zero; `mask` is first(n).
INLINE lanes ld_first(const float *p, long n, __m256i mask) {
    return n == 8 ? ld(p) : _mm256_maskload_ps(p, mask);
}

// maps: `count` (1..8) maps `stride` floats apart, H rows of W -> plane[r*rowStride + w] =
// (map0[r][w], ..., map7[r][w]) Lanes for r < H, w < W, zero in the lanes past count: 8x8
// blocks, transposed. With stride = H*W the maps are consecutive; a larger stride takes a band
// of rows out of each.
INLINE void interleave_rows(const float *maps, long stride, long count, long H, long W, float *plane, long rowStride) {
    for (long r = 0; r < H; r++) {
        for (long w0 = 0; w0 < W; w0 += 8) {
            long n = W - w0 < 8 ? W - w0 : 8;
            __m256i mask = first(n);
            lanes b[8];
            for (long l = 0; l < 8; l++)
                b[l] = l < count ? ld_first(maps + l * stride + r * W + w0, n, mask) : _mm256_setzero_ps();
            transpose8(b);
            float *d = plane + (r * rowStride + w0) * 8;
            for (long j = 0; j < n; j++) st(d + j * 8, b[j]);
        }
    }
}

INLINE void interleave(const float *maps, long count, long H, long W, float *plane, long rowStride) {
    interleave_rows(maps, H * W, count, H, W, plane, rowStride);
}

// The inverse: plane [H rows of rowStride Lanes] -> the first `count` lanes' H x W maps,
// `stride` floats apart.
INLINE void deinterleave_rows(const float *plane, long rowStride, long count, long H, long W, float *maps, long stride) {
    for (long r = 0; r < H; r++) {
        for (long w0 = 0; w0 < W; w0 += 8) {
            long n = W - w0 < 8 ? W - w0 : 8;
            const float *s = plane + (r * rowStride + w0) * 8;
            lanes b[8];
            for (long j = 0; j < 8; j++) b[j] = j < n ? ld(s + j * 8) : _mm256_setzero_ps();
            transpose8(b);
            for (long l = 0; l < count; l++) st_first(maps + l * stride + r * W + w0, b[l], n);
        }
    }
}

INLINE void deinterleave(const float *plane, long rowStride, long count, long H, long W, float *maps) {
    deinterleave_rows(plane, rowStride, count, H, W, maps, H * W);
}

#endif
#endif
