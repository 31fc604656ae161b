import MoCoTensor

/// Row-wise L2 normalisation, y = x / max(‖x‖, ε) (PyTorch's `F.normalize`, ε = 1e-12).
/// Backward: dX = (dY − y (y·dY)) / ‖x‖ (for ‖x‖ > ε; dY / ε otherwise).
public final class L2Normalize {
    public let eps: Float = 1e-12
    public private(set) var rows = 0, dim = 0
    public private(set) var y = FloatBuffer(count: 0)
    public private(set) var dX = FloatBuffer(count: 0)
    private var norms: [Float] = []
    public init() {}

    public func plan(rows n: Int, dim d: Int, backward: Bool) {
        if y.count != n * d { y = FloatBuffer(count: n * d) }
        if backward && dX.count != n * d { dX = FloatBuffer(count: n * d) }
        if norms.count != n { norms = .init(repeating: 0, count: n) }
        rows = n; dim = d
    }

    /// x: [N, D] -> y: [N, D]
    public func forward(_ x: UnsafePointer<Float>) {
        for n in 0..<rows {
            let xr = x + n * dim, yr = y.ptr + n * dim
            var s: Double = 0
            for i in 0..<dim { s += Double(xr[i]) * Double(xr[i]) }
            let norm = Float(s.squareRoot())
            norms[n] = norm
            let inv = 1 / max(norm, eps)
            for i in 0..<dim { yr[i] = xr[i] * inv }
        }
    }

    /// dY: [N, D] -> dX: [N, D]
    public func backward(_ dY: UnsafePointer<Float>) {
        for n in 0..<rows {
            let yr = y.ptr + n * dim, dyr = dY + n * dim, dxr = dX.ptr + n * dim
            let norm = norms[n]
            if norm <= eps {
                for i in 0..<dim { dxr[i] = dyr[i] / eps }
                continue
            }
            var dot: Float = 0
            for i in 0..<dim { dot += yr[i] * dyr[i] }
            let inv = 1 / norm
            for i in 0..<dim { dxr[i] = (dyr[i] - yr[i] * dot) * inv }
        }
    }
}
