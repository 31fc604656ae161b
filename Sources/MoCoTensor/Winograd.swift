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
    public func transformFilter(_ w: UnsafePointer<Float>, outChannels K: Int, inChannels C: Int,
                                adjoint: Bool, into u: UnsafeMutablePointer<Float>) {
        switch self {
        case .f2x2: winogradFilter(WinogradF2.self, w, K, C, adjoint, u)
        case .f4x4: winogradFilter(WinogradF4.self, w, K, C, adjoint, u)
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

/// w: [K, C, 3, 3] -> u: [α², K, C] (or the adjoint's [α², C, K]).
func winogradFilter<F: WinogradTile>(_: F.Type, _ w: UnsafePointer<Float>, _ K: Int, _ C: Int,
                                     _ adjoint: Bool, _ u: UnsafeMutablePointer<Float>) {
    let A = F.alpha
    // Output channels and input channels of the convolution the filter is for.
    let outC = adjoint ? C : K, inC = adjoint ? K : C
    let plane = outC * inC
    // Scratch: g [3, 3] (the filter, flipped for the adjoint), then t [α, 3] = G g.
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 9 + A * 3) { scratch in
        let gp = scratch.baseAddress!, tp = gp + 9
        for k in 0..<K {
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
    let L = Lanes.scalarCount
    let m = F.m, A = F.alpha, AA = A * A
    let th = (H + m - 1) / m, tw = (W + m - 1) / m, tps = th * tw
    let groups = (nb + L - 1) / L
    let TL = groups * tps            // tiles per lane
    let T = TL * L                   // GEMM columns (TL Lanes per row of V and M)
    let Hp = th * m + 2, Wp = tw * m + 2, HW = H * W, Wo = tw * m
    let V = ws
    let M = V + AA * C * T
    let pad = UnsafeMutableRawPointer(M + AA * K * T).assumingMemoryBound(to: Lanes.self)
    let rows = pad + Hp * Wp
    let plane = rows + A * Wp
    let VL = UnsafeMutableRawPointer(V).assumingMemoryBound(to: Lanes.self)
    let ML = UnsafeMutableRawPointer(M).assumingMemoryBound(to: Lanes.self)

    // Input transform, per (channel, group): interleave the group's maps into the interior of
    // the padded plane (its border stays zero), then V = Bᵀ d B tile by tile.
    pad.update(repeating: Lanes(), count: Hp * Wp)
    let padF = UnsafeMutableRawPointer(pad).assumingMemoryBound(to: Float.self)
    let ldV = C * TL                 // Lanes between the ξ planes of V
    for c in 0..<C {
        for g in 0..<groups {
            let count = min(L, nb - g * L)
            for lane in 0..<L {
                let dst = padF + (Wp + 1) * L + lane
                if lane < count {
                    let src = x + (c * N + n0 + g * L + lane) * HW
                    for r in 0..<H {
                        let s = src + r * W, d = dst + r * Wp * L
                        for w in 0..<W { d[w * L] = s[w] }
                    }
                } else if g == groups - 1 {
                    for r in 0..<H {
                        let d = dst + r * Wp * L
                        for w in 0..<W { d[w * L] = 0 }
                    }
                }
            }
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

    // M[ξ][K, T] = U[ξ][K, C] @ V[ξ][C, T]
    for xi in 0..<AA {
        BLAS.sgemm(m: K, n: T, k: C, a: u + xi * K * C, lda: C, b: V + xi * C * T, ldb: T,
                   c: M + xi * K * T, ldc: T)
    }

    // Output transform: Y = Aᵀ M A per tile into a plane of whole tiles, then each lane's
    // H×W crop into its sample of y.
    let ldM = K * TL
    withUnsafeTemporaryAllocation(of: Lanes.self, capacity: m * A) { scratch in
        let tmp = scratch.baseAddress!   // [m, α]
        let planeF = UnsafeMutableRawPointer(plane).assumingMemoryBound(to: Float.self)
        for k in 0..<K {
            for g in 0..<groups {
                for ty in 0..<th {
                    for tx in 0..<tw {
                        let src = ML + k * TL + g * tps + ty * tw + tx
                        // tmp[m, α] = Aᵀ M_tile (column j of the tile is ξ = i·α + j over i)
                        for j in 0..<A { F.output(src + j * ldM, A * ldM, tmp + j, A) }
                        let dst = plane + ty * m * Wo + tx * m
                        for i in 0..<m { F.output(tmp + i * A, 1, dst + i * Wo, 1) }
                    }
                }
                let count = min(L, nb - g * L)
                for lane in 0..<count {
                    let out = y + (k * N + n0 + g * L + lane) * HW
                    let src = planeF + lane
                    for r in 0..<H {
                        let o = out + r * W, s = src + r * Wo * L
                        for w in 0..<W { o[w] = s[w * L] }
                    }
                }
            }
        }
    }
}
