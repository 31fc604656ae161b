import MoCoTensor

/// Scratch memory shared by the layers of one model (im2col columns and the like).
/// It grows to the largest request made while planning and is never freed during training.
public final class Workspace: @unchecked Sendable {
    public private(set) var buffer = FloatBuffer(count: 0)
    public init() {}
    /// Ensures at least `count` floats; call while planning, not inside a step.
    public func reserve(_ count: Int) {
        if buffer.count < count { buffer = FloatBuffer(count: count) }
    }
    public var ptr: UnsafeMutablePointer<Float> { buffer.ptr }
}
