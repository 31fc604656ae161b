/// eˣ on eight lanes at once (the softmax of the contrastive logits calls it ~2M times a step;
/// libm's scalar `expf` made the loss cost 4x PyTorch's).
///
/// x = n·ln2 + r with n = round(x·log₂e) and r reduced in two parts (Cody & Waite, "Software
/// Manual for the Elementary Functions", 1980: ln2 = 0.693359375 − 2.12194440e-4, the first
/// part exact in 9 bits so that n·ln2_hi is exact), |r| ≤ ½ln2; eʳ by its Taylor polynomial of
/// degree 7 (truncation error |r|⁸/8! ≤ 5e-9 relative), 2ⁿ by writing n + 127 into the exponent
/// field. Against Double exp over [-87, 88] (`VectorExpTests`): worst 1.1 ulp measured.
/// Inputs are clamped to [-87.3, 88.7] first: below -87.3 the result is ~1e-38 instead of a
/// subnormal or zero; from 88.38 on it is +∞ (n = 128; Float's own overflow starts at 88.73).
/// The softmax calls it on z − max(z) ≤ 0.
@inlinable @inline(__always)
public func vectorExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let xc = x.clamped(lowerBound: SIMD8(repeating: -87.3), upperBound: SIMD8(repeating: 88.7))
    // n = round(x·log₂e): adding 1.5·2²³ leaves the rounded integer in the low mantissa bits
    // (a per-lane Float -> Int32 conversion is a generic, unvectorised call).
    let shifter = SIMD8<Float>(repeating: 12_582_912)
    let t = xc * 1.442695041 + shifter
    let n = t - shifter
    let r = (xc - n * 0.693359375) - n * -2.12194440e-4
    var p = SIMD8<Float>(repeating: 1 / 5040) + r * (1 / 40320)
    p = p * r + 1 / 720
    p = p * r + 1 / 120
    p = p * r + 1 / 24
    p = p * r + 1 / 6
    p = p * r + 0.5
    p = p * r + 1
    p = p * r + 1
    let e = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000 &+ 127
    return p * unsafeBitCast(e &<< 23, to: SIMD8<Float>.self)
}

/// z: [count] -> out[j] = exp(z[j] − shift), returns Σ_j out[j] (summed in Float within
/// blocks of 64 and in Double across blocks).
@inlinable
public func expShifted(_ z: UnsafePointer<Float>, count: Int, shift: Float, into out: UnsafeMutablePointer<Float>) -> Double {
    let s = SIMD8<Float>(repeating: shift)
    var total = 0.0
    var j = 0
    while j + 8 <= count {
        var block = SIMD8<Float>()
        let end = min(count - 7, j + 64)
        while j < end {
            let v = vectorExp(UnsafeRawPointer(z + j).loadUnaligned(as: SIMD8<Float>.self) - s)
            UnsafeMutableRawPointer(out + j).storeBytes(of: v, as: SIMD8<Float>.self)
            block += v
            j += 8
        }
        total += Double(block.sum())
    }
    if j < count {
        var v = SIMD8<Float>(repeating: -.infinity)
        for i in j..<count { v[i - j] = z[i] - shift }
        let e = vectorExp(v)
        for i in j..<count { out[i] = e[i - j]; total += Double(e[i - j]) }
    }
    return total
}
