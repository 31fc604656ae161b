import MoCoTensor

/// Elementwise and per-channel reduction kernels of BatchNorm and ReLU, on raw pointers with
/// 8-lane SIMD (one AVX register; two SSE registers on the portable x86-64 baseline).
///
/// Reductions accumulate 8 Float lanes over blocks of 256 values and fold each block into
/// Double, so the rounding error stays that of 256-term Float sums whatever the length; the
/// order depends only on the length, so results are reproducible.

typealias F8 = SIMD8<Float>

@inline(__always) func load8(_ p: UnsafePointer<Float>) -> F8 {
    UnsafeRawPointer(p).loadUnaligned(as: F8.self)
}
/// max(v, 0) per lane (a select; the generic `pointwiseMax` is not inlined).
@inline(__always) func relu8(_ v: F8) -> F8 { v.replacing(with: 0, where: v .< 0) }
@inline(__always) func store8(_ v: F8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: F8.self)
}

/// x: [n] -> (Σx, Σx²), with Σx² computed as Σ(x − m)² + n·m² for the local mean m (two passes).
///
/// A one-pass Σx² in Float loses the variance to cancellation when |mean| ≫ std (e.g. σ² = 1e-4
/// at mean 10 keeps no correct digit), and then the statistics depend on where the blocks fall,
/// i.e. on how the batch is split across workers. The centred second pass keeps full relative
/// precision of the variance; the Double result stays exact enough to be summed across workers
/// (synchronised BN) and recentred by the caller as Σx²/N − mean².
@inline(__always)
func sums(_ x: UnsafePointer<Float>, _ n: Int) -> (Double, Double) {
    var s = 0.0
    var i = 0
    while i < n {
        let end = min(n, i + 256)
        var vs = F8()
        while i + 8 <= end { vs += load8(x + i); i += 8 }
        var bs = vs.sum()
        while i < end { bs += x[i]; i += 1 }
        s += Double(bs)
    }
    let m = n > 0 ? s / Double(n) : 0
    let mf = Float(m), mv = F8(repeating: mf)
    var q = 0.0
    var shift = 0.0   // Σ(x − mf), small: mf is within rounding of the mean
    i = 0
    while i < n {
        let end = min(n, i + 256)
        var vq = F8(), vd = F8()
        while i + 8 <= end { let d = load8(x + i) - mv; vq += d * d; vd += d; i += 8 }
        var bq = vq.sum(), bd = vd.sum()
        while i < end { let d = x[i] - mf; bq += d * d; bd += d; i += 1 }
        q += Double(bq); shift += Double(bd)
    }
    // Σx = n·mf + Σ(x − mf) and Σx² = Σ(x − mf)² + 2·mf·Σ(x − mf) + n·mf²: both from the centred
    // pass, so Σx²/n − (Σx/n)² = Σ(x − mf)²/n − (Σ(x − mf)/n)² exactly in Double (the first
    // pass's Σx only locates mf; its Float rounding, ~1e-7·|x| per term, must not enter).
    let mfd = Double(mf), nd = Double(n)
    return (nd * mfd + shift, q + 2 * mfd * shift + nd * mfd * mfd)
}

/// x, dY: [n] -> (Σ dY, Σ dY·x̂) with x̂ = (x − mean)·invStd. With `y` (the fused ReLU's
/// output) dY is first masked in place: dY = 0 where y <= 0.
@inline(__always)
func gradSums(_ x: UnsafePointer<Float>, _ dY: UnsafeMutablePointer<Float>, _ n: Int, _ mean: Double, _ invStd: Double,
              reluOutput y: UnsafePointer<Float>?) -> (Double, Double) {
    var s = 0.0, q = 0.0
    let m = Float(mean), mv = F8(repeating: Float(mean))
    let zero = F8()
    var i = 0
    while i < n {
        let end = min(n, i + 256)
        var vs = F8(), vq = F8()
        if let y {
            while i + 8 <= end {
                var d = load8(dY + i)
                d.replace(with: zero, where: load8(y + i) .<= zero)
                store8(d, dY + i)
                vs += d; vq += d * (load8(x + i) - mv); i += 8
            }
        } else {
            while i + 8 <= end { let d = load8(dY + i); vs += d; vq += d * (load8(x + i) - mv); i += 8 }
        }
        var bs = vs.sum(), bq = vq.sum()
        while i < end {
            if let y, y[i] <= 0 { dY[i] = 0 }
            let d = dY[i]; bs += d; bq += d * (x[i] - m); i += 1
        }
        s += Double(bs); q += Double(bq)
    }
    return (s, q * invStd)
}

/// x: [n] -> y: [n],  y = s·x + b, then max(0, ·) when `relu`.
@inline(__always)
func affine(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ s: Float, _ b: Float, relu: Bool) {
    let sv = F8(repeating: s), bv = F8(repeating: b)
    var i = 0
    if relu {
        while i + 8 <= n { store8(relu8(sv * load8(x + i) + bv), y + i); i += 8 }
        while i < n { y[i] = max(0, s * x[i] + b); i += 1 }
    } else {
        while i + 8 <= n { store8(sv * load8(x + i) + bv, y + i); i += 8 }
        while i < n { y[i] = s * x[i] + b; i += 1 }
    }
}

/// x, dY: [n] -> dX: [n],  dX = a·dY + b + c·x  (BatchNorm's input gradient, affine in dY and x)
@inline(__always)
func affine2(_ dY: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ dX: UnsafeMutablePointer<Float>, _ n: Int,
             _ a: Float, _ b: Float, _ c: Float) {
    let av = F8(repeating: a), bv = F8(repeating: b), cv = F8(repeating: c)
    var i = 0
    while i + 8 <= n { store8(av * load8(dY + i) + bv + cv * load8(x + i), dX + i); i += 8 }
    while i < n { dX[i] = a * dY[i] + b + c * x[i]; i += 1 }
}

/// dY: [n] masked in place: dY = 0 where the ReLU output y <= 0.
@inline(__always)
func reluMask(_ dY: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) {
    let zero = F8()
    var i = 0
    while i + 8 <= n {
        var d = load8(dY + i)
        d.replace(with: zero, where: load8(y + i) .<= zero)
        store8(d, dY + i); i += 8
    }
    while i < n { if y[i] <= 0 { dY[i] = 0 }; i += 1 }
}

/// a, b: [n] -> y: [n],  y = max(0, a + b)
@inline(__always)
func addReLU(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    while i + 8 <= n { store8(relu8(load8(a + i) + load8(b + i)), y + i); i += 8 }
    while i < n { y[i] = max(0, a[i] + b[i]); i += 1 }
}

/// x: [n] -> y: [n],  y = max(0, x)
@inline(__always)
func relu(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    while i + 8 <= n { store8(relu8(load8(x + i)), y + i); i += 8 }
    while i < n { y[i] = max(0, x[i]); i += 1 }
}

/// Runs an elementwise kernel over n values split into up to `threads` ranges (chunks of at
/// least 64 Ki values per worker; aligned to 16 floats).
@inline(__always)
func parallelElementwise(_ n: Int, threads: Int, _ body: (Int, Int) -> Void) {
    let blocks = (n + 15) / 16
    Parallel.forRanges(blocks, threads: threads, minimum: 4096) { r in
        let lo = r.lowerBound * 16, hi = min(n, r.upperBound * 16)
        if hi > lo { body(lo, hi - lo) }
    }
}
