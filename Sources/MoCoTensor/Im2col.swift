/// im2col / col2im for channel-major activations.
///
/// Activations are stored channel-major over the whole batch, `[C, N, H, W]`, so that a
/// convolution over a chunk of samples is one GEMM: `y[K, n*Ho*Wo] = w[K, C*kh*kw] @ cols`.
/// Row `r = (c*kh + i)*kw + j` of `cols` matches PyTorch's weight layout `[K, C, kh, kw]`.
public struct ConvGeometry: Sendable, Equatable {
    public var channels: Int, height: Int, width: Int
    public var kernel: Int, stride: Int, padding: Int
    public init(channels: Int, height: Int, width: Int, kernel: Int, stride: Int, padding: Int) {
        self.channels = channels; self.height = height; self.width = width
        self.kernel = kernel; self.stride = stride; self.padding = padding
    }
    public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    public var rows: Int { channels * kernel * kernel }
}

/// x: [C, N, H, W] (samples n0..<n0+nb of a batch of N) -> cols: [C*k*k, nb*Ho*Wo]
public func im2col(_ x: UnsafePointer<Float>, batch N: Int, first n0: Int, count nb: Int,
                   geometry g: ConvGeometry, cols: UnsafeMutablePointer<Float>) {
    let H = g.height, W = g.width, Ho = g.outHeight, Wo = g.outWidth
    let k = g.kernel, s = g.stride, p = g.padding
    if s == 1 && Ho == H && Wo == W {
        im2colSame(x, batch: N, first: n0, count: nb, geometry: g, cols: cols)
        return
    }
    if s > 1 && k > 1 {
        im2colStrided(x, batch: N, first: n0, count: nb, geometry: g, cols: cols)
        return
    }
    let ldc = nb * Ho * Wo
    for c in 0..<g.channels {
        let xc = x + (c * N + n0) * H * W
        for i in 0..<k {
            for j in 0..<k {
                let row = cols + ((c * k + i) * k + j) * ldc
                // Output columns ow whose input column ow*s - p + j lies inside [0, W).
                let owLo = max(0, (p - j + s - 1) / s)
                let owHi = W - 1 + p - j < 0 ? 0 : min(Wo, (W - 1 + p - j) / s + 1)   // none when tap j is right of the map
                for n in 0..<nb {
                    let xn = xc + n * H * W
                    let rn = row + n * Ho * Wo
                    for oh in 0..<Ho {
                        let ih = oh * s - p + i
                        let dst = rn + oh * Wo
                        if ih < 0 || ih >= H || owLo >= owHi {
                            dst.update(repeating: 0, count: Wo)
                            continue
                        }
                        if owLo > 0 { dst.update(repeating: 0, count: owLo) }
                        if owHi < Wo { (dst + owHi).update(repeating: 0, count: Wo - owHi) }
                        let src = xn + ih * W - p + j
                        if s == 1 {
                            (dst + owLo).update(from: src + owLo, count: owHi - owLo)
                        } else {
                            var ow = owLo
                            while ow < owHi { dst[ow] = src[ow * s]; ow += 1 }
                        }
                    }
                }
            }
        }
    }
}

/// im2col for a stride-1 "same" convolution (Ho = H, Wo = W, 2p = k - 1):
/// x: [C, N, H, W] (samples n0..<n0+nb) -> cols: [C*k*k, nb*H*W].
///
/// The chunk's samples of one channel are contiguous, and row (c, i, j) of the columns is
/// that block shifted by d = (i-p)*W + (j-p) in flat index: one copy per (channel, tap) for
/// all samples, clipped to the block. Then the positions whose source lies outside their own
/// sample's image (rows above/below, columns that wrapped around a row edge) are zeroed with
/// inline loops. On small maps (7x7, 14x14) a copy or memset call per sample and row cost more
/// than the copying itself (`perf`: memset + memmove 17% of a ResNet-20 step).
func im2colSame(_ x: UnsafePointer<Float>, batch N: Int, first n0: Int, count nb: Int,
                geometry g: ConvGeometry, cols: UnsafeMutablePointer<Float>) {
    let H = g.height, W = g.width, HW = H * W
    let k = g.kernel, p = g.padding
    let L = nb * HW
    for c in 0..<g.channels {
        let xc = x + (c * N + n0) * HW
        for i in 0..<k {
            let di = i - p
            // Valid output rows: 0 <= oh + di < H.
            let ohLo = max(0, -di), ohHi = min(H, H - di)
            for j in 0..<k {
                let dj = j - p
                let owLo = max(0, -dj), owHi = min(W, W - dj)
                let row = cols + ((c * k + i) * k + j) * L
                if ohLo >= ohHi || owLo >= owHi { row.update(repeating: 0, count: L); continue }
                let d = di * W + dj
                // Shifted copy of the whole block, clipped so the source stays inside it.
                let a = max(0, -d), b = min(L, L - d)
                (row + a).update(from: xc + a + d, count: b - a)
                for q in 0..<a { row[q] = 0 }
                var q = b
                while q < L { row[q] = 0; q += 1 }
                // Per sample: rows outside the image, then wrapped columns of the valid rows.
                for n in 0..<nb {
                    let dst = row + n * HW
                    var e = 0
                    while e < ohLo * W { dst[e] = 0; e += 1 }
                    e = ohHi * W
                    while e < HW { dst[e] = 0; e += 1 }
                    if owLo > 0 || owHi < W {
                        var r = ohLo
                        while r < ohHi {
                            let line = dst + r * W
                            var t = 0
                            while t < owLo { line[t] = 0; t += 1 }
                            t = owHi
                            while t < W { line[t] = 0; t += 1 }
                            r += 1
                        }
                    }
                }
            }
        }
    }
}

/// im2col for a stride s > 1 and a kernel k > 1 (e.g. ResNet's 3x3 stride-2 convolutions):
/// x: [C, N, H, W] (samples n0..<n0+nb) -> cols: [C*k*k, nb*Ho*Wo].
///
/// Row (c, i, j) of the columns holds xpad[oh·s + i][ow·s + j] (xpad: the map with p zero rows
/// and columns around it). Per (channel, sample) the map is first split into its s column
/// phases, P[φ][r][q] = xpad[r][q·s + φ], so that each tap's row of the columns is, for every
/// oh, the contiguous run P[j mod s][oh·s + i][⌊j/s⌋ ..< ⌊j/s⌋ + Wo]: one strided move per input
/// value, then k² contiguous copies, instead of k² strided element-by-element gathers (the
/// generic loop above; `perf`: im2col was 3.7% of a ResNet-20 step, nearly all of it in the two
/// stride-2 convolutions). The values are the same.
func im2colStrided(_ x: UnsafePointer<Float>, batch N: Int, first n0: Int, count nb: Int,
                   geometry g: ConvGeometry, cols: UnsafeMutablePointer<Float>) {
    let H = g.height, W = g.width, Ho = g.outHeight, Wo = g.outWidth
    let k = g.kernel, s = g.stride, p = g.padding
    let HW = H * W, HoWo = Ho * Wo, ldc = nb * HoWo
    // P: [s, Hp, Qw]; the taps read rows up to (Ho-1)·s + k-1 < Hp and columns up to (k-1)/s + Wo - 1 < Qw.
    let Hp = max(H + 2 * p, (Ho - 1) * s + k), Qw = Wo + (k - 1) / s
    let phaseFloats = Hp * Qw
    withUnsafeTemporaryAllocation(of: Float.self, capacity: s * phaseFloats) { buffer in
        let P = buffer.baseAddress!
        // Positions outside the map stay zero: every (channel, sample) writes only those inside.
        P.update(repeating: 0, count: s * phaseFloats)
        for c in 0..<g.channels {
            for n in 0..<nb {
                let xn = x + (c * N + n0 + n) * HW
                // P[φ][r + p][q] = x[r][q·s + φ - p] for the columns inside the map.
                for r in 0..<H {
                    let src = xn + r * W
                    for phase in 0..<s {
                        // q·s + φ - p in 0 ..< W
                        let last = W - 1 + p - phase
                        if last < 0 { continue }
                        let qLo = max(0, (p - phase + s - 1) / s)
                        let qHi = min(Qw, last / s + 1)
                        if qLo >= qHi { continue }
                        let dst = P + phase * phaseFloats + (r + p) * Qw
                        var q = qLo, w = qLo * s + phase - p
                        while q < qHi { dst[q] = src[w]; q += 1; w += s }
                    }
                }
                for i in 0..<k {
                    for j in 0..<k {
                        let plane = P + (j % s) * phaseFloats + j / s
                        let row = cols + ((c * k + i) * k + j) * ldc + n * HoWo
                        for oh in 0..<Ho {
                            copyFloats(plane + (oh * s + i) * Qw, row + oh * Wo, Wo)
                        }
                    }
                }
            }
        }
    }
}

/// dst[0 ..< n] = src[0 ..< n], 8 at a time (a memcpy call costs more than these short runs).
@inline(__always)
func copyFloats(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    var e = 0
    while e + 8 <= n {
        UnsafeMutableRawPointer(dst + e).storeBytes(of: UnsafeRawPointer(src + e).loadUnaligned(as: SIMD8<Float>.self),
                                                    as: SIMD8<Float>.self)
        e += 8
    }
    while e < n { dst[e] = src[e]; e += 1 }
}

/// cols: [C*k*k, nb*Ho*Wo] -> dX: [C, N, H, W], accumulated (+=) into samples n0..<n0+nb.
public func col2im(_ cols: UnsafePointer<Float>, batch N: Int, first n0: Int, count nb: Int,
                   geometry g: ConvGeometry, dX: UnsafeMutablePointer<Float>) {
    let H = g.height, W = g.width, Ho = g.outHeight, Wo = g.outWidth
    let k = g.kernel, s = g.stride, p = g.padding
    let ldc = nb * Ho * Wo
    for c in 0..<g.channels {
        let xc = dX + (c * N + n0) * H * W
        for i in 0..<k {
            for j in 0..<k {
                let row = cols + ((c * k + i) * k + j) * ldc
                let owLo = max(0, (p - j + s - 1) / s)
                let owHi = W - 1 + p - j < 0 ? 0 : min(Wo, (W - 1 + p - j) / s + 1)   // none when tap j is right of the map
                if owLo >= owHi { continue }
                for n in 0..<nb {
                    let xn = xc + n * H * W
                    let rn = row + n * Ho * Wo
                    for oh in 0..<Ho {
                        let ih = oh * s - p + i
                        if ih < 0 || ih >= H { continue }
                        let src = rn + oh * Wo
                        let dst = xn + ih * W - p + j
                        var ow = owLo
                        if s == 1 {
                            while ow < owHi { dst[ow] += src[ow]; ow += 1 }
                        } else {
                            while ow < owHi { dst[ow * s] += src[ow]; ow += 1 }
                        }
                    }
                }
            }
        }
    }
}
