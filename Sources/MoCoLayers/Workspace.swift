import Foundation
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

/// Maximum floats of im2col columns per GEMM chunk: 4 Mi floats (16 MiB) keeps the columns
/// near the last-level cache while each GEMM stays large (thousands of columns).
public let im2colChunkFloats: Int =
    ProcessInfo.processInfo.environment["MOCO_IM2COL_CHUNK"].flatMap { Int($0) } ?? (1 << 18)
