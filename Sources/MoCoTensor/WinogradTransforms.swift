/// The 1-D transforms of Winograd's minimal filtering algorithms F(m, 3) (Lavin & Gray,
/// "Fast Algorithms for Convolutional Neural Networks", CVPR 2016, section 4):
///
///   y = Aᵀ [ (G g) ⊙ (Bᵀ d) ]       d: α = m + 2 inputs, g: 3 taps, y: m outputs,
///
/// which computes the correlation y[i] = Σ_j g[j] d[i + j] (a CNN "convolution") with α
/// multiplications instead of 3m. Nesting it over rows and columns gives F(m×m, 3×3):
///   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A.
/// Each transform reads its α (or 3) values at a stride and writes its results at a stride,
/// so one function serves the row and the column pass. The input and output transforms work
/// on `Lanes`, eight samples at once (one lane per sample, see `Winograd.swift`).
protocol WinogradTile {
    /// Output tile size m (the input tile is α = m + 2).
    static var m: Int { get }
    /// d: [α] (stride ds) -> Bᵀ d: [α] (stride os)
    static func input(_ d: UnsafePointer<Lanes>, _ ds: Int, _ o: UnsafeMutablePointer<Lanes>, _ os: Int)
    /// g: [3] (stride gs) -> G g: [α] (stride os)
    static func filter(_ g: UnsafePointer<Float>, _ gs: Int, _ o: UnsafeMutablePointer<Float>, _ os: Int)
    /// v: [α] (stride vs) -> Aᵀ v: [m] (stride os)
    static func output(_ v: UnsafePointer<Lanes>, _ vs: Int, _ o: UnsafeMutablePointer<Lanes>, _ os: Int)
    /// dy: [m] (stride ys) -> A dy: [α] (stride os), the adjoint of `output` (weight gradient)
    static func outputAdjoint(_ dy: UnsafePointer<Lanes>, _ ys: Int, _ o: UnsafeMutablePointer<Lanes>, _ os: Int)
    /// du: [α] (stride us) -> Gᵀ du: [3] (stride os), the adjoint of `filter` (weight gradient)
    static func filterAdjoint(_ du: UnsafePointer<Float>, _ us: Int, _ o: UnsafeMutablePointer<Float>, _ os: Int)
}

/// Eight samples of one value (SSE pairs on baseline x86-64, one AVX register with AVX2).
typealias Lanes = SIMD8<Float>

extension WinogradTile {
    static var alpha: Int { m + 2 }
}

/// F(2, 3):  Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],
///           G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1],   Aᵀ = [1 1 1 0; 0 1 -1 -1].
enum WinogradF2: WinogradTile {
    static var m: Int { 2 }

    @inline(__always)
    static func input(_ d: UnsafePointer<Lanes>, _ ds: Int, _ o: UnsafeMutablePointer<Lanes>, _ os: Int) {
        let d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds]
        o[0] = d0 - d2
        o[os] = d1 + d2
        o[2 * os] = d2 - d1
        o[3 * os] = d1 - d3
    }

    @inline(__always)
    static func filter(_ g: UnsafePointer<Float>, _ gs: Int, _ o: UnsafeMutablePointer<Float>, _ os: Int) {
        let g0 = g[0], g1 = g[gs], g2 = g[2 * gs]
        let h = 0.5 * (g0 + g2)
        o[0] = g0
        o[os] = h + 0.5 * g1
        o[2 * os] = h - 0.5 * g1
        o[3 * os] = g2
    }

    @inline(__always)
    static func output(_ v: UnsafePointer<Lanes>, _ vs: Int, _ o: UnsafeMutablePointer<Lanes>, _ os: Int) {
        let v0 = v[0], v1 = v[vs], v2 = v[2 * vs], v3 = v[3 * vs]
        o[0] = v0 + v1 + v2
        o[os] = v1 - v2 - v3
    }

    /// A = (Aᵀ)ᵀ: [1 0; 1 1; 1 -1; 0 -1].
    @inline(__always)
    static func outputAdjoint(_ dy: UnsafePointer<Lanes>, _ ys: Int, _ o: UnsafeMutablePointer<Lanes>, _ os: Int) {
        let y0 = dy[0], y1 = dy[ys]
        o[0] = y0
        o[os] = y0 + y1
        o[2 * os] = y0 - y1
        o[3 * os] = -y1
    }

    /// Gᵀ = [1 ½ ½ 0; 0 ½ -½ 0; 0 ½ ½ 1].
    @inline(__always)
    static func filterAdjoint(_ du: UnsafePointer<Float>, _ us: Int, _ o: UnsafeMutablePointer<Float>, _ os: Int) {
        let u0 = du[0], u1 = du[us], u2 = du[2 * us], u3 = du[3 * us]
        let h = 0.5 * (u1 + u2)
        o[0] = u0 + h
        o[os] = 0.5 * (u1 - u2)
        o[2 * os] = h + u3
    }
}

/// F(4, 3), with the interpolation points 0, ±1, ±2, ∞ of Lavin & Gray:
///   Bᵀ = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1],
///   G = [¼ 0 0; -⅙ -⅙ -⅙; -⅙ ⅙ -⅙; 1/24 1/12 ⅙; 1/24 -1/12 ⅙; 0 0 1],
///   Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
enum WinogradF4: WinogradTile {
    static var m: Int { 4 }

    @inline(__always)
    static func input(_ d: UnsafePointer<Lanes>, _ ds: Int, _ o: UnsafeMutablePointer<Lanes>, _ os: Int) {
        let d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds], d4 = d[4 * ds], d5 = d[5 * ds]
        let a = d4 - 4 * d2, b = d3 - 4 * d1     // rows 1, 2: a ± b
        let c = d4 - d2, e = 2 * (d3 - d1)       // rows 3, 4: c ± e
        o[0] = 4 * d0 - 5 * d2 + d4
        o[os] = a + b
        o[2 * os] = a - b
        o[3 * os] = c + e
        o[4 * os] = c - e
        o[5 * os] = 4 * d1 - 5 * d3 + d5
    }

    @inline(__always)
    static func filter(_ g: UnsafePointer<Float>, _ gs: Int, _ o: UnsafeMutablePointer<Float>, _ os: Int) {
        let g0 = g[0], g1 = g[gs], g2 = g[2 * gs]
        let s = g0 + g2
        o[0] = g0 / 4
        o[os] = -(s + g1) / 6
        o[2 * os] = -(s - g1) / 6
        let t = g0 / 24 + g2 / 6
        o[3 * os] = t + g1 / 12
        o[4 * os] = t - g1 / 12
        o[5 * os] = g2
    }

    @inline(__always)
    static func output(_ v: UnsafePointer<Lanes>, _ vs: Int, _ o: UnsafeMutablePointer<Lanes>, _ os: Int) {
        let v0 = v[0], v1 = v[vs], v2 = v[2 * vs], v3 = v[3 * vs], v4 = v[4 * vs], v5 = v[5 * vs]
        let p12 = v1 + v2, m12 = v1 - v2, p34 = v3 + v4, m34 = v3 - v4
        o[0] = v0 + p12 + p34
        o[os] = m12 + 2 * m34
        o[2 * os] = p12 + 4 * p34
        o[3 * os] = m12 + 8 * m34 + v5
    }

    /// A = (Aᵀ)ᵀ: [1 0 0 0; 1 1 1 1; 1 -1 1 -1; 1 2 4 8; 1 -2 4 -8; 0 0 0 1].
    @inline(__always)
    static func outputAdjoint(_ dy: UnsafePointer<Lanes>, _ ys: Int, _ o: UnsafeMutablePointer<Lanes>, _ os: Int) {
        let y0 = dy[0], y1 = dy[ys], y2 = dy[2 * ys], y3 = dy[3 * ys]
        let p = y0 + y2, q = y1 + y3             // rows 1, 2: p ± q
        let r = y0 + 4 * y2, t = 2 * y1 + 8 * y3 // rows 3, 4: r ± t
        o[0] = y0
        o[os] = p + q
        o[2 * os] = p - q
        o[3 * os] = r + t
        o[4 * os] = r - t
        o[5 * os] = y3
    }

    /// Gᵀ = [¼ -⅙ -⅙ 1/24 1/24 0; 0 -⅙ ⅙ 1/12 -1/12 0; 0 -⅙ -⅙ ⅙ ⅙ 1].
    @inline(__always)
    static func filterAdjoint(_ du: UnsafePointer<Float>, _ us: Int, _ o: UnsafeMutablePointer<Float>, _ os: Int) {
        let u0 = du[0], u1 = du[us], u2 = du[2 * us], u3 = du[3 * us], u4 = du[4 * us], u5 = du[5 * us]
        let s12 = u1 + u2, d12 = u1 - u2, s34 = u3 + u4, d34 = u3 - u4
        o[0] = u0 / 4 - s12 / 6 + s34 / 24
        o[os] = -d12 / 6 + d34 / 12
        o[2 * os] = (s34 - s12) / 6 + u5
    }
}
