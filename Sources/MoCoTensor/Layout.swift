/// Conversions between the batch-major layout users see (`[N, C, H, W]`, PyTorch's) and the
/// channel-major layout the engine computes in (`[C, N, H, W]`).

/// x: [N, C, HW] -> y: [C, N, HW]
public func nchwToCnhw(_ x: UnsafePointer<Float>, n N: Int, c C: Int, hw: Int, _ y: UnsafeMutablePointer<Float>) {
    for n in 0..<N {
        for c in 0..<C {
            (y + (c * N + n) * hw).update(from: x + (n * C + c) * hw, count: hw)
        }
    }
}

/// x: [C, N, HW] -> y: [N, C, HW]
public func cnhwToNchw(_ x: UnsafePointer<Float>, n N: Int, c C: Int, hw: Int, _ y: UnsafeMutablePointer<Float>) {
    for n in 0..<N {
        for c in 0..<C {
            (y + (n * C + c) * hw).update(from: x + (c * N + n) * hw, count: hw)
        }
    }
}
