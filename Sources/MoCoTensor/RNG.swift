/// Deterministic random numbers. Every random choice in swift-moco (initialisation, the data
/// permutation, augmentation, the queue's initial keys, shuffle-BN's permutation) comes from a
/// generator derived from the run's seed and a stream key, so that a run is determined by its
/// seed and world size, and any sample's augmentation can be recomputed from
/// (seed, epoch, index) alone.

/// SplitMix64 (Steele, Lea, Flood 2014): used to hash stream keys into seeds.
@inlinable public func splitmix64(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// xoshiro256** 1.0 (Blackman and Vigna 2018). State is four words; `state` is exposed so
/// checkpoints can store and restore it exactly.
public struct Xoshiro: RandomNumberGenerator, Sendable {
    public var state: (UInt64, UInt64, UInt64, UInt64)

    /// A generator for `seed` and a stream of keys (e.g. `[epoch, sampleIndex]`).
    public init(seed: UInt64, stream: [UInt64] = []) {
        var h = splitmix64(seed)
        for k in stream { h = splitmix64(h ^ splitmix64(k &+ 0x632B_E59B_D9B4_E019)) }
        var s = h
        func next() -> UInt64 { s = splitmix64(s); return s }
        state = (next(), next(), next(), next())
        if state == (0, 0, 0, 0) { state.0 = 1 }
    }

    public init(state: [UInt64]) {
        precondition(state.count == 4)
        self.state = (state[0], state[1], state[2], state[3])
    }

    public var stateArray: [UInt64] { [state.0, state.1, state.2, state.3] }

    @inlinable @inline(__always)
    public mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = (state.3 << 45) | (state.3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits.
    @inlinable public mutating func uniform() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Uniform in [lo, hi).
    @inlinable public mutating func uniform(_ lo: Float, _ hi: Float) -> Float {
        lo + (hi - lo) * uniform()
    }

    /// Uniform integer in 0..<n (Lemire's multiply-shift; bias below 2^-32 for n < 2^32).
    @inlinable public mutating func below(_ n: Int) -> Int {
        precondition(n > 0)
        return Int((UInt64(UInt32(truncatingIfNeeded: next() >> 32)) &* UInt64(n)) >> 32)
    }

    /// Standard normal by Box-Muller, in Double for accuracy.
    public mutating func normal() -> Float {
        var u1 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        if u1 < 1e-300 { u1 = 1e-300 }
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
    }

    /// A uniformly random permutation of 0..<n (Fisher-Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n < 2 { return p }
        for i in stride(from: n - 1, to: 0, by: -1) {
            let j = below(i + 1)
            p.swapAt(i, j)
        }
        return p
    }
}

import Foundation
@usableFromInline func _log(_ x: Double) -> Double { Foundation.log(x) }
@usableFromInline func _cos(_ x: Double) -> Double { Foundation.cos(x) }
