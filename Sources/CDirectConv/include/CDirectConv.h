#ifndef CDIRECTCONV_H
#define CDIRECTCONV_H

// Direct convolution on AVX2 + FMA for the convolutions that neither Winograd nor a plain GEMM
// covers: strided ones (ResNet's 3x3 stride-2 layers).
// No im2col columns: per sample, the padded input is split once into its `s` column phases,
// P[r][c][φ][q] = xpad[c][r][q·s + φ] (rows outermost: the input rows of one output row, every
// channel and phase, are one block), so that tap (i, j) of output row oy reads the contiguous
// run P[oy·s + i][c][j mod s][⌊j/s⌋ ...]; 6 output channels x 16 output positions are kept in
// 12 registers while the sum runs over c, i, j in that order (MoCoLayers/Conv2d.swift).

/// 1 when this CPU and OS run AVX2 and FMA (the functions below may be called), else 0.
int moco_direct_conv_available(void);

/// Lanes of the output tile actually used, in percent: a tile is 2 rows x 8 columns when
/// Wo <= 8, else 1 row x 16·⌈Wo/16⌉ columns.
long moco_direct_conv_utilization(long Wo);

/// Floats of one worker's phase planes (the `ws` argument below) for C channels of H x W.
long moco_direct_conv_workspace(long C, long H, long W, long k, long s, long p);

/// w: [K, C, k, k] -> wp: K·C·k·k floats, blocks of 6 output channels (the last K mod 6),
/// each [C, k·k, 6] so that the kernel's broadcasts read forward.
void moco_direct_conv_pack_filter(const float *w, long K, long C, long k, float *wp);

/// Samples n0 ..< n0+nb of x: [C, N, H, W] with the packed filter wp -> y: [K, N, Ho, Wo]
/// (written), stride s, padding p, Ho = (H + 2p - k)/s + 1 (likewise Wo).
/// ws: moco_direct_conv_workspace(...) floats, private to the caller.
void moco_direct_conv_avx2(const float *x, long N, long n0, long nb, long C, long H, long W,
                           long K, long k, long s, long p, const float *wp, float *y, float *ws);

#endif
