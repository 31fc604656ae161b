import CWinograd

/// Winograd convolution for 3×3, stride-1, padding-1 ("same") layers on channel-major
/// activations (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016).
///
/// Per α×α input tile d (tiles step by m and overlap by 2) and 3×3 filter g,
///   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A.
/// Summed over input channels, the α² elementwise products become α² GEMMs over all tiles of
/// a chunk of samples:
///   M[ξ][K, T] = U[ξ][K, C] @ V[ξ][C, T],   U[ξ] = (G g Gᵀ)ξ,  V[ξ] = (Bᵀ d B)ξ,
/// which do (m+2)²/(9m²) of the direct method's multiplications: 16/36 for F(2×2, 3×3),
/// 36/144 for F(4×4, 3×3), less the part of the last tile row/column that falls outside the map.
/// The transforms only add and scale (see `WinogradTransforms.swift`); OpenBLAS does the GEMMs.
/// On CPUs with AVX2, F(4×4)'s transforms run in C (`WinogradAVX2`), with the same bits.
public enum WinogradVariant: String, Sendable, CaseIterable {
    /// F(2×2, 3×3): 4×4 tiles, 2.25x fewer multiplications, transforms with entries 0, ±½, ±1.
    case f2x2 = "winograd2"
    /// F(4×4, 3×3): 6×6 tiles, 4x fewer multiplications; entries up to 8 and 1/24, so about
    /// 20x the rounding error of F(2×2) (worst 6.4e-6 against 3.1e-7 of Σ|w||x|, `WinogradTests`).
    case f4x4 = "winograd4"

    /// Output tile size m.
    public var m: Int { self == .f2x2 ? 2 : 4 }
    /// Input tile size α = m + 2.
    public var alpha: Int { m + 2 }

    /// Floats of transformed filters U: [α², K, C].
    public func filterFloats(inChannels C: Int, outChannels K: Int) -> Int { alpha * alpha * K * C }

    /// Tiles per H×W map: ⌈H/m⌉·⌈W/m⌉.
    public func tiles(height H: Int, width W: Int) -> Int { ((H + m - 1) / m) * ((W + m - 1) / m) }

    /// Workspace floats of one call on `samples` samples (see `conv3x3`): transformed inputs
    /// and outputs of every tile, for whole groups of 8 samples, and three small planes.
    public func workspaceFloats(inChannels C: Int, outChannels K: Int, height H: Int, width W: Int, samples: Int) -> Int {
        let th = (H + m - 1) / m, tw = (W + m - 1) / m
        let T = (samples + 7) / 8 * 8 * tiles(height: H, width: W)
        let pad = (th * m + 2) * (tw * m + 2)
        let rows = alpha * (tw * m + 2)
        let plane = th * m * tw * m
        return alpha * alpha * (C + K) * T + 8 * (pad + rows + plane)
    }

    /// w: [K, C, 3, 3] -> u: [α², K, C], u[ξ][k][c] = (G w[k][c] Gᵀ)ξ.
    /// With `adjoint`, the filter of the input-gradient convolution instead,
    /// wT[c][k][i][j] = w[k][c][2-i][2-j] -> u: [α², C, K].
    /// The K filters are split over `threads` workers (each (k, c) pair is written by one of
    /// them, the same bits for any count).
    public func transformFilter(_ w: UnsafePointer<Float>, outChannels K: Int, inChannels C: Int,
                                adjoint: Bool, into u: UnsafeMutablePointer<Float>, threads: Int = 1) {
        Parallel.forRanges(K, threads: threads, minimum: 4) { ks in
            switch self {
            case .f2x2: winogradFilter(WinogradF2.self, w, ks, C, adjoint, u, outChannels: K)
            case .f4x4: winogradFilter(WinogradF4.self, w, ks, C, adjoint, u, outChannels: K)
            }
        }
    }

    /// Samples n0..<n0+nb of x: [C, N, H, W] and of the output gradient dY: [K, N, H, W]
    /// -> the weight gradient in the transformed domain dU: [α², K, C] (overwritten, or added
    /// to with `accumulate`); `filterGradient` turns the sum over all chunks into dW.
    /// `workspace`: `workspaceFloats(…, samples: nb)` floats. Single-threaded, as `conv3x3`.
    public func weightGrad3x3(_ x: UnsafePointer<Float>, _ dY: UnsafePointer<Float>, batch N: Int, first n0: Int, count nb: Int,
                              inChannels C: Int, outChannels K: Int, height H: Int, width W: Int,
                              gradient dU: UnsafeMutablePointer<Float>, accumulate: Bool,
                              workspace: UnsafeMutablePointer<Float>) {
        switch self {
        case .f2x2: winogradWeightGrad(WinogradF2.self, x, dY, N, n0, nb, C, K, H, W, dU, accumulate, workspace)
        case .f4x4: winogradWeightGrad(WinogradF4.self, x, dY, N, n0, nb, C, K, H, W, dU, accumulate, workspace)
        }
    }

    /// dU: [α², K, C] -> dW: [K, C, 3, 3] = Gᵀ dU G per (k, c), the adjoint of `transformFilter`.
    public func filterGradient(_ dU: UnsafePointer<Float>, outChannels K: Int, inChannels C: Int,
                               into dW: UnsafeMutablePointer<Float>) {
        switch self {
        case .f2x2: winogradFilterGradient(WinogradF2.self, dU, K, C, dW)
        case .f4x4: winogradFilterGradient(WinogradF4.self, dU, K, C, dW)
        }
    }

    /// Samples n0..<n0+nb of x: [C, N, H, W], with u: [α², K, C] from `transformFilter`
    /// -> the same samples of y: [K, N, H, W] (written, not accumulated).
    /// `workspace`: `workspaceFloats(…, samples: nb)` floats. Single-threaded (the caller splits
    /// the batch); the GEMMs run on one OpenBLAS thread when called inside a `Parallel` region.
    public func conv3x3(_ x: UnsafePointer<Float>, batch N: Int, first n0: Int, count nb: Int,
                        inChannels C: Int, outChannels K: Int, height H: Int, width W: Int,
                        filter u: UnsafePointer<Float>, output y: UnsafeMutablePointer<Float>,
                        workspace: UnsafeMutablePointer<Float>) {
        switch self {
        case .f2x2: winogradConv(WinogradF2.self, x, N, n0, nb, C, K, H, W, u, y, workspace)
        case .f4x4: winogradConv(WinogradF4.self, x, N, n0, nb, C, K, H, W, u, y, workspace)
        }
    }
}

/// The tiling of samples n0..<n0+nb of H×W maps for F(m×m, 3×3), on `Lanes` of 8 samples:
/// ⌈H/m⌉×⌈W/m⌉ tiles a map, tiles numbered group of 8 samples by group, then row by row.
struct WinogradTiling {
    let m: Int, alpha: Int
    /// Tile rows and columns of a map, and tiles a map.
    let th: Int, tw: Int, tps: Int
    /// Groups of 8 samples, and tiles per lane (Lanes per row of V and M).
    let groups: Int, TL: Int
    /// The zero-bordered input plane [Hp, Wp] and the output plane's row of whole tiles.
    let Hp: Int, Wp: Int, Wo: Int

    init<F: WinogradTile>(_: F.Type, height H: Int, width W: Int, samples nb: Int) {
        m = F.m; alpha = F.alpha
        th = (H + m - 1) / m; tw = (W + m - 1) / m; tps = th * tw
        groups = (nb + Lanes.scalarCount - 1) / Lanes.scalarCount
        TL = groups * tps
        Hp = th * m + 2; Wp = tw * m + 2; Wo = tw * m
    }

    /// GEMM columns: TL Lanes of 8.
    var T: Int { TL * Lanes.scalarCount }
}

/// w: [K, C, 3, 3] -> u: [α², K, C] (or the adjoint's [α², C, K]), for the filters k in `ks`.
func winogradFilter<F: WinogradTile>(_: F.Type, _ w: UnsafePointer<Float>, _ ks: Range<Int>, _ C: Int,
                                     _ adjoint: Bool, _ u: UnsafeMutablePointer<Float>, outChannels K: Int) {
    let A = F.alpha
    // Output channels and input channels of the convolution the filter is for.
    let outC = adjoint ? C : K, inC = adjoint ? K : C
    let plane = outC * inC
    // Scratch: g [3, 3] (the filter, flipped for the adjoint), then t [α, 3] = G g.
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 9 + A * 3) { scratch in
        let gp = scratch.baseAddress!, tp = gp + 9
        for k in ks {
            for c in 0..<C {
                let src = w + (k * C + c) * 9
                if adjoint { for e in 0..<9 { gp[e] = src[8 - e] } } else { for e in 0..<9 { gp[e] = src[e] } }
                // t = G g (column by column), then u = t Gᵀ (row by row).
                for j in 0..<3 { F.filter(gp + j, 3, tp + j, 3) }
                let dst = u + (adjoint ? c * inC + k : k * inC + c)
                for i in 0..<A { F.filter(tp + i * 3, 1, dst + i * A * plane, plane) }
            }
        }
    }
}

/// Samples n0..<n0+nb: x: [C, N, H, W], u: [α², K, C] -> y: [K, N, H, W].
///
/// The transforms run on eight samples at once: each (channel, group of 8 samples) map is
/// interleaved into a zero-bordered plane of `Lanes` (one lane per sample), so that every add
/// of a transform is a vector add and every transformed tile is stored as whole vectors. Tile
/// t·8 + lane of a GEMM column block is tile t of the group's sample `lane`; tiles are numbered
/// group by group, then row by row. Lanes past the last sample carry zeros and are dropped.
///
/// Workspace (`WinogradVariant.workspaceFloats`): V [α², C, T] | M [α², K, T] | padded plane |
/// α transformed rows | output plane, with T = 8·⌈nb/8⌉·⌈H/m⌉·⌈W/m⌉.
func winogradConv<F: WinogradTile>(_: F.Type, _ x: UnsafePointer<Float>, _ N: Int, _ n0: Int, _ nb: Int,
                                   _ C: Int, _ K: Int, _ H: Int, _ W: Int,
                                   _ u: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                   _ ws: UnsafeMutablePointer<Float>) {
    if F.m == 4 && WinogradVariant.f4x4.runsFused(inChannels: C, outChannels: K, width: W) {
        return WinogradFused.run(x, N, n0, nb, C, K, H, W, u, y, ws)
    }
    winogradConvUnfused(F.self, x, N, n0, nb, C, K, H, W, u, y, ws)
}

/// `winogradConv` as three passes over the whole chunk: input transform, the α² GEMMs on
/// OpenBLAS, output transform.
func winogradConvUnfused<F: WinogradTile>(_: F.Type, _ x: UnsafePointer<Float>, _ N: Int, _ n0: Int, _ nb: Int,
                                          _ C: Int, _ K: Int, _ H: Int, _ W: Int,
                                          _ u: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                          _ ws: UnsafeMutablePointer<Float>) {
    let g = WinogradTiling(F.self, height: H, width: W, samples: nb)
    let AA = g.alpha * g.alpha, T = g.T, Hp = g.Hp, Wp = g.Wp
    let V = ws
    let M = V + AA * C * T
    let pad = UnsafeMutableRawPointer(M + AA * K * T).assumingMemoryBound(to: Lanes.self)
    let rows = pad + Hp * Wp
    let plane = rows + g.alpha * Wp
    let VL = UnsafeMutableRawPointer(V).assumingMemoryBound(to: Lanes.self)
    let ML = UnsafeMutableRawPointer(M).assumingMemoryBound(to: Lanes.self)

    inputTransform(F.self, x, N, n0, nb, C, H, W, V: VL, pad: pad, rows: rows)

    // M[ξ][K, T] = U[ξ][K, C] @ V[ξ][C, T]
    for xi in 0..<AA {
        BLAS.sgemm(m: K, n: T, k: C, a: u + xi * K * C, lda: C, b: V + xi * C * T, ldb: T,
                   c: M + xi * K * T, ldc: T)
    }

    outputTransform(F.self, M: ML, N, n0, nb, K, H, W, y, plane: plane)
}

/// The transforms on the AVX2 kernels of `CWinograd` where they run (F(4×4) on a CPU with AVX2;
/// the same bits as the Swift functions, `WinogradAVX2Tests`), else the Swift ones below.
@inline(__always)
func inputTransform<F: WinogradTile>(_: F.Type, _ x: UnsafePointer<Float>, _ N: Int, _ n0: Int, _ nb: Int,
                                     _ C: Int, _ H: Int, _ W: Int, V: UnsafeMutablePointer<Lanes>,
                                     pad: UnsafeMutablePointer<Lanes>, rows: UnsafeMutablePointer<Lanes>) {
    guard F.m == 4 && WinogradAVX2.isAvailable else {
        return winogradInput(F.self, x, N, n0, nb, C, H, W, V: V, pad: pad, rows: rows)
    }
    moco_winograd4_input_avx2(x, N, n0, nb, C, H, W, floats(V), floats(pad), floats(rows))
}

@inline(__always)
func outputTransform<F: WinogradTile>(_: F.Type, M: UnsafeMutablePointer<Lanes>, _ N: Int, _ n0: Int, _ nb: Int,
                                      _ K: Int, _ H: Int, _ W: Int, _ y: UnsafeMutablePointer<Float>,
                                      plane: UnsafeMutablePointer<Lanes>) {
    guard F.m == 4 && WinogradAVX2.isAvailable else {
        return winogradOutput(F.self, M: M, N, n0, nb, K, H, W, y, plane: plane)
    }
    moco_winograd4_output_avx2(floats(M), N, n0, nb, K, H, W, y, floats(plane))
}

@inline(__always)
func outputGradientTransform<F: WinogradTile>(_: F.Type, _ dY: UnsafePointer<Float>, _ N: Int, _ n0: Int, _ nb: Int,
                                              _ K: Int, _ H: Int, _ W: Int, dM: UnsafeMutablePointer<Lanes>,
                                              plane: UnsafeMutablePointer<Lanes>) {
    guard F.m == 4 && WinogradAVX2.isAvailable else {
        return winogradOutputGradient(F.self, dY, N, n0, nb, K, H, W, dM: dM, plane: plane)
    }
    moco_winograd4_dy_avx2(dY, N, n0, nb, K, H, W, floats(dM), floats(plane))
}

/// Lanes as their floats, for the C kernels.
@inline(__always)
private func floats(_ p: UnsafeMutablePointer<Lanes>) -> UnsafeMutablePointer<Float> {
    UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
}

/// Output transform of samples n0..<n0+nb: M: [α², K, T] (as Lanes: [α², K, TL]) -> y: [K, N, H, W]
/// (written): Y = Aᵀ M A per tile into `plane` ([th·m, tw·m] Lanes, whole tiles), then each
/// lane's H×W crop into its sample of y.
func winogradOutput<F: WinogradTile>(_: F.Type, M ML: UnsafePointer<Lanes>, _ N: Int, _ n0: Int, _ nb: Int,
                                     _ K: Int, _ H: Int, _ W: Int, _ y: UnsafeMutablePointer<Float>,
                                     plane: UnsafeMutablePointer<Lanes>) {
    let L = Lanes.scalarCount
    let t = WinogradTiling(F.self, height: H, width: W, samples: nb)
    let m = t.m, A = t.alpha, th = t.th, tw = t.tw, tps = t.tps, groups = t.groups, Wo = t.Wo
    let HW = H * W
    let ldM = K * t.TL
    withUnsafeTemporaryAllocation(of: Lanes.self, capacity: m * A) { scratch in
        let tmp = scratch.baseAddress!   // [m, α]
        for k in 0..<K {
            for g in 0..<groups {
                for ty in 0..<th {
                    for tx in 0..<tw {
                        let src = ML + k * t.TL + g * tps + ty * tw + tx
                        // tmp[m, α] = Aᵀ M_tile (column j of the tile is ξ = i·α + j over i)
                        for j in 0..<A { F.output(src + j * ldM, A * ldM, tmp + j, A) }
                        let dst = plane + ty * m * Wo + tx * m
                        for i in 0..<m { F.output(tmp + i * A, 1, dst + i * Wo, 1) }
                    }
                }
                let count = min(L, nb - g * L)
                deinterleave(plane, rowStride: Wo, count, H, W, into: y + (k * N + n0 + g * L) * HW)
            }
        }
    }
}

/// Input transform of samples n0..<n0+nb: x: [C, N, H, W] -> V: [α², C, T] (as Lanes: [α², C, TL]),
/// V[ξ][c][tile] = (Bᵀ d B)ξ of the tile's α×α window of the zero-padded map. Per (channel,
/// group of 8 samples): the group's maps go interleaved into the interior of `pad`
/// ([Hp, Wp] Lanes, its border stays zero), then Bᵀ runs down every column into `rows`
/// ([α, Wp]) and B along each row of it, tile by tile.
func winogradInput<F: WinogradTile>(_: F.Type, _ x: UnsafePointer<Float>, _ N: Int, _ n0: Int, _ nb: Int,
                                    _ C: Int, _ H: Int, _ W: Int, V VL: UnsafeMutablePointer<Lanes>,
                                    pad: UnsafeMutablePointer<Lanes>, rows: UnsafeMutablePointer<Lanes>) {
    let L = Lanes.scalarCount
    let t = WinogradTiling(F.self, height: H, width: W, samples: nb)
    let m = t.m, A = t.alpha, th = t.th, tw = t.tw, tps = t.tps, groups = t.groups, TL = t.TL
    let Hp = t.Hp, Wp = t.Wp, HW = H * W
    pad.update(repeating: Lanes(), count: Hp * Wp)
    let ldV = C * TL                 // Lanes between the ξ planes of V
    for c in 0..<C {
        for g in 0..<groups {
            let count = min(L, nb - g * L)
            interleave(x + (c * N + n0 + g * L) * HW, count, H, W, into: pad + Wp + 1, rowStride: Wp)
            for ty in 0..<th {
                // rows[α, Wp] = Bᵀ pad[ty·m ..< ty·m + α, :]   (every column at once)
                let top = pad + ty * m * Wp
                for col in 0..<Wp { F.input(top + col, Wp, rows + col, Wp) }
                // V[i·α + j][c][tile] = (rows[i, tx·m ..< tx·m + α] B)j
                let t0 = g * tps + ty * tw
                for i in 0..<A {
                    let dst = VL + i * A * ldV + c * TL + t0
                    let line = rows + i * Wp
                    for tx in 0..<tw { F.input(line + tx * m, 1, dst + tx, ldV) }
                }
            }
        }
    }
}

/// Weight gradient of samples n0..<n0+nb in the transformed domain (the adjoint of the forward
/// Y = Aᵀ [U ⊙ V] A with respect to U): per tile, dM = A dY Aᵀ, then
///   dU[ξ][K, C] (+)= dM[ξ][K, T] @ V[ξ][C, T]ᵀ
/// (x: [C, N, H, W], dY: [K, N, H, W] -> dU: [α², K, C]). dY's tiles past the map's last
/// row or column are zero (those outputs are computed and dropped by the forward).
/// Workspace: as `winogradConv` (V, dM, the padded plane, the rows; the dY plane uses the
/// padded plane's space).
func winogradWeightGrad<F: WinogradTile>(_: F.Type, _ x: UnsafePointer<Float>, _ dY: UnsafePointer<Float>,
                                         _ N: Int, _ n0: Int, _ nb: Int, _ C: Int, _ K: Int, _ H: Int, _ W: Int,
                                         _ dU: UnsafeMutablePointer<Float>, _ accumulate: Bool,
                                         _ ws: UnsafeMutablePointer<Float>) {
    let g = WinogradTiling(F.self, height: H, width: W, samples: nb)
    let AA = g.alpha * g.alpha, T = g.T, Hp = g.Hp, Wp = g.Wp
    let V = ws
    let dM = V + AA * C * T
    let pad = UnsafeMutableRawPointer(dM + AA * K * T).assumingMemoryBound(to: Lanes.self)
    let rows = pad + Hp * Wp
    let VL = UnsafeMutableRawPointer(V).assumingMemoryBound(to: Lanes.self)
    let ML = UnsafeMutableRawPointer(dM).assumingMemoryBound(to: Lanes.self)

    inputTransform(F.self, x, N, n0, nb, C, H, W, V: VL, pad: pad, rows: rows)
    // The dY plane uses the padded plane's space (th·m·tw·m ≤ Hp·Wp Lanes).
    outputGradientTransform(F.self, dY, N, n0, nb, K, H, W, dM: ML, plane: pad)

    // dU[ξ][K, C] (+)= dM[ξ][K, T] @ V[ξ][C, T]ᵀ
    for xi in 0..<AA {
        BLAS.sgemm(transB: true, m: K, n: C, k: T, a: dM + xi * K * T, lda: T, b: V + xi * C * T, ldb: T,
                   beta: accumulate ? 1 : 0, c: dU + xi * K * C, ldc: C)
    }
}

/// Output-gradient transform of samples n0..<n0+nb: dY: [K, N, H, W] -> dM: [α², K, T] (as
/// Lanes: [α², K, TL]), dM_tile = A dY_tile Aᵀ. Per (output channel, group): the group's maps
/// interleaved into `plane` ([th·m, tw·m] Lanes, zero past H×W), then each tile.
func winogradOutputGradient<F: WinogradTile>(_: F.Type, _ dY: UnsafePointer<Float>, _ N: Int, _ n0: Int, _ nb: Int,
                                             _ K: Int, _ H: Int, _ W: Int, dM ML: UnsafeMutablePointer<Lanes>,
                                             plane: UnsafeMutablePointer<Lanes>) {
    let L = Lanes.scalarCount
    let t = WinogradTiling(F.self, height: H, width: W, samples: nb)
    let m = t.m, A = t.alpha, th = t.th, tw = t.tw, tps = t.tps, groups = t.groups, Wo = t.Wo
    let HW = H * W
    plane.update(repeating: Lanes(), count: th * m * Wo)
    let ldM = K * t.TL
    withUnsafeTemporaryAllocation(of: Lanes.self, capacity: A * m) { scratch in
        let tmp = scratch.baseAddress!   // [α, m]: A applied down the tile's columns
        for k in 0..<K {
            for g in 0..<groups {
                let count = min(L, nb - g * L)
                interleave(dY + (k * N + n0 + g * L) * HW, count, H, W, into: plane, rowStride: Wo)
                for ty in 0..<th {
                    for tx in 0..<tw {
                        let src = plane + ty * m * Wo + tx * m
                        // tmp[α, m] = A dY_tile (column by column)
                        for j in 0..<m { F.outputAdjoint(src + j, Wo, tmp + j, m) }
                        // dM[i·α + j][k][tile] = (tmp[i, :] Aᵀ)j
                        let dst = ML + k * t.TL + g * tps + ty * tw + tx
                        for i in 0..<A { F.outputAdjoint(tmp + i * m, 1, dst + i * A * ldM, ldM) }
                    }
                }
            }
        }
    }
}

/// du: [α², K, C] -> dw: [K, C, 3, 3], dw[k][c] = Gᵀ du[k][c] G (written).
func winogradFilterGradient<F: WinogradTile>(_: F.Type, _ du: UnsafePointer<Float>, _ K: Int, _ C: Int,
                                             _ dw: UnsafeMutablePointer<Float>) {
    let A = F.alpha
    let plane = K * C
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * A) { scratch in
        let t = scratch.baseAddress!   // [3, α] = Gᵀ du (column by column)
        for k in 0..<K {
            for c in 0..<C {
                let src = du + k * C + c
                for j in 0..<A { F.filterAdjoint(src + j * plane, A * plane, t + j, A) }
                let dst = dw + (k * C + c) * 9
                for i in 0..<3 { F.filterAdjoint(t + i * A, 1, dst + i * 3, 1) }
            }
        }
    }
}

/// maps: `count` ≤ 8 consecutive H×W maps (a group's samples of one channel)
/// -> plane[r·rowStride + w] = (map0[r, w], …, map7[r, w]) for r < H, w < W, zero in the lanes
/// past `count`. Row by row, one vector store per pixel from eight sequential streams (a scalar
/// store per lane at a 32-byte stride cost ~half of the input transform).
@inline(__always)
func interleave(_ maps: UnsafePointer<Float>, _ count: Int, _ H: Int, _ W: Int,
                into plane: UnsafeMutablePointer<Lanes>, rowStride: Int) {
    let HW = H * W
    if count == Lanes.scalarCount {
        for r in 0..<H {
            let s = maps + r * W, d = plane + r * rowStride
            for w in 0..<W {
                let p = s + w
                d[w] = Lanes(p[0], p[HW], p[2 * HW], p[3 * HW], p[4 * HW], p[5 * HW], p[6 * HW], p[7 * HW])
            }
        }
        return
    }
    for r in 0..<H {
        let d = plane + r * rowStride
        for w in 0..<W {
            var v = Lanes()
            for lane in 0..<count { v[lane] = maps[lane * HW + r * W + w] }
            d[w] = v
        }
    }
}

/// The inverse for the output: plane [H rows of `rowStride` Lanes] -> the first `count` lanes'
/// H×W maps, consecutive in `maps`.
@inline(__always)
func deinterleave(_ plane: UnsafePointer<Lanes>, rowStride: Int, _ count: Int, _ H: Int, _ W: Int,
                  into maps: UnsafeMutablePointer<Float>) {
    let HW = H * W
    if count == Lanes.scalarCount {
        for r in 0..<H {
            let s = plane + r * rowStride, o = maps + r * W
            for w in 0..<W {
                let v = s[w], p = o + w
                p[0] = v[0]; p[HW] = v[1]; p[2 * HW] = v[2]; p[3 * HW] = v[3]
                p[4 * HW] = v[4]; p[5 * HW] = v[5]; p[6 * HW] = v[6]; p[7 * HW] = v[7]
            }
        }
        return
    }
    for r in 0..<H {
        let s = plane + r * rowStride
        for w in 0..<W {
            let v = s[w]
            for lane in 0..<count { maps[lane * HW + r * W + w] = v[lane] }
        }
    }
}
