import MoCoTensor

/// ReLU, y = max(0, x); backward dX = dY · [y > 0].
public final class ReLU {
    public private(set) var count = 0
    public private(set) var y = FloatBuffer(count: 0)
    public private(set) var dX = FloatBuffer(count: 0)
    /// Engine workers.
    public let threads: Int
    public init(threads: Int = 1) { self.threads = max(1, threads) }

    public func plan(count n: Int, backward: Bool) {
        if y.count != n { y = FloatBuffer(count: n) }
        if backward && dX.count != n { dX = FloatBuffer(count: n) }
        count = n
    }

    /// x: [n] -> y: [n]
    public func forward(_ x: UnsafePointer<Float>) {
        let y = self.y.ptr
        parallelElementwise(count, threads: threads) { o, n in relu(x + o, y + o, n) }
    }

    /// dY: [n] -> dX: [n]
    public func backward(_ dY: UnsafePointer<Float>) {
        let y = self.y.ptr, dX = self.dX.ptr
        parallelElementwise(count, threads: threads) { o, n in
            (dX + o).update(from: dY + o, count: n)
            reluMask(dX + o, y + o, n)
        }
    }
}

/// The end of a residual block: y = max(0, a + b) (He et al. 2016, eq. 1 followed by ReLU).
/// Backward gives one gradient, dZ = dY · [y > 0], for both summands.
public final class AddReLU {
    public private(set) var count = 0
    public private(set) var y = FloatBuffer(count: 0)
    /// Engine workers.
    public let threads: Int
    public init(threads: Int = 1) { self.threads = max(1, threads) }

    /// `output`: a buffer (at least n floats) to write y into, e.g. the first summand's own
    /// buffer when it is not needed afterwards (the sum is then computed in place).
    public func plan(count n: Int, output: FloatBuffer? = nil) {
        if let output {
            precondition(output.count >= n, "AddReLU: output buffer too small")
            y = output; ownsY = false
        } else if !ownsY || y.count != n {
            y = FloatBuffer(count: n); ownsY = true
        }
        count = n
    }
    private var ownsY = true

    /// a: [n], b: [n] -> y: [n]
    public func forward(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>) {
        let y = self.y.ptr
        parallelElementwise(count, threads: threads) { o, n in addReLU(a + o, b + o, y + o, n) }
    }

    /// dY: [n] -> dZ: [n], in place (dY is masked).
    public func backward(_ dY: UnsafeMutablePointer<Float>) {
        let y = self.y.ptr
        parallelElementwise(count, threads: threads) { o, n in reluMask(dY + o, y + o, n) }
    }
}
