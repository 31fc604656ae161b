#ifndef CWINOGRAD_H
#define CWINOGRAD_H

// The data-movement-heavy passes of Winograd F(4x4, 3x3) (MoCoTensor/Winograd.swift) on AVX2,
// for CPUs that have it; the Swift versions are the portable path and the definition: these
// compute the same operations in the same order (no contraction into FMA), so both give the
// same bits (WinogradAVX2Tests). "Lanes" are 8 floats, one per sample of a group of 8.

/// 1 when this CPU and OS run AVX2 (the functions below may be called), else 0.
int moco_winograd4_avx2_available(void);

/// Input transform, as `winogradInput(WinogradF4.self, ...)`: samples n0..<n0+nb of
/// x: [C, N, H, W] -> V: [36, C, TL] Lanes, TL = ceil(nb/8)*ceil(H/4)*ceil(W/4).
/// pad: [Hp, Wp] Lanes (zeroed here), rows: [6, Wp] Lanes, Hp = 4*ceil(H/4)+2, Wp = 4*ceil(W/4)+2.
void moco_winograd4_input_avx2(const float *x, long N, long n0, long nb, long C, long H, long W,
                               float *V, float *pad, float *rows);

/// Output transform, as the loop after the GEMMs in `winogradConv`: M: [36, K, TL] Lanes
/// -> samples n0..<n0+nb of y: [K, N, H, W] (written). plane: [4*ceil(H/4), 4*ceil(W/4)] Lanes.
void moco_winograd4_output_avx2(const float *M, long N, long n0, long nb, long K, long H, long W,
                                float *y, float *plane);

/// Output-gradient transform, as the loop in `winogradWeightGrad`: samples n0..<n0+nb of
/// dY: [K, N, H, W] -> dM: [36, K, TL] Lanes, dM_tile = A dY_tile Aᵀ. plane: as for the output
/// (zeroed here).
void moco_winograd4_dy_avx2(const float *dY, long N, long n0, long nb, long K, long H, long W,
                            float *dM, float *plane);

/// 1 when this CPU and OS run AVX2 and FMA (the fused convolution below may be called), else 0.
int moco_winograd4_fused_available(void);

/// Floats of the fused convolution's workspace for C input and K output channels on H x W maps.
long moco_winograd4_fused_workspace(long C, long K, long H, long W);

/// The whole F(4x4, 3x3) convolution of samples n0..<n0+nb, as `winogradConv(WinogradF4.self,
/// ...)`, fused per group of 8 samples and row of output tiles (CWinogradFused.c):
/// x: [C, N, H, W], u: [36, K, C] -> y: [K, N, H, W] (written). The transforms give the bits of
/// the unfused path; the tile GEMMs sum over the C input channels in order with FMA, so they
/// round as a GEMM kernel does, not necessarily as OpenBLAS's. ws: `moco_winograd4_fused_workspace` floats.
void moco_winograd4_fused_avx2(const float *x, long N, long n0, long nb, long C, long K, long H, long W,
                               const float *u, float *y, float *ws);

/// 1 when this CPU and OS also run AVX-512 F (`moco_winograd4_fused_avx512` may be called), else 0.
int moco_winograd4_fused_avx512_available(void);

/// `moco_winograd4_fused_avx2` with the tile GEMMs on 16-float AVX-512 registers: the same
/// sums in the same order (over c, one FMA per term, from zero), so the same bits.
void moco_winograd4_fused_avx512(const float *x, long N, long n0, long nb, long C, long K, long H, long W,
                                 const float *u, float *y, float *ws);

#endif
