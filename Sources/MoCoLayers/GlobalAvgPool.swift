import MoCoTensor

/// Global average pooling from channel-major maps to feature rows.
/// Forward y[n, c] = mean_hw x[c, n, hw]; backward dX[c, n, hw] = dY[n, c] / HW.
public final class GlobalAvgPool {
    public private(set) var channels = 0, batch = 0, spatial = 0
    public private(set) var y = FloatBuffer(count: 0)
    public private(set) var dX = FloatBuffer(count: 0)
    public init() {}

    public func plan(channels c: Int, batch n: Int, spatial hw: Int, backward: Bool) {
        if y.count != n * c { y = FloatBuffer(count: n * c) }
        if backward && dX.count != c * n * hw { dX = FloatBuffer(count: c * n * hw) }
        channels = c; batch = n; spatial = hw
    }

    /// x: [C, N, HW] -> y: [N, C]
    public func forward(_ x: UnsafePointer<Float>) {
        let inv = 1 / Float(spatial)
        for c in 0..<channels {
            for n in 0..<batch {
                let row = x + (c * batch + n) * spatial
                var s: Float = 0
                for i in 0..<spatial { s += row[i] }
                y.ptr[n * channels + c] = s * inv
            }
        }
    }

    /// dY: [N, C] -> dX: [C, N, HW]
    public func backward(_ dY: UnsafePointer<Float>) {
        let inv = 1 / Float(spatial)
        for c in 0..<channels {
            for n in 0..<batch {
                (dX.ptr + (c * batch + n) * spatial).update(repeating: dY[n * channels + c] * inv, count: spatial)
            }
        }
    }
}
