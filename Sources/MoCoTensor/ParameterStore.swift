/// Named tensors laid out in one contiguous buffer.
///
/// A model's parameters live in one `ParameterStore` and their gradients in a second buffer of
/// the same layout, so one call can allreduce every gradient, take an SGD step over every
/// weight, or apply the momentum update k = m*k + (1-m)*q to the whole key encoder.
/// Registration order is the layer order of the forward pass; gradients of the last layers
/// are therefore at the end of the buffer and complete first in the backward pass.
public final class ParameterStore: @unchecked Sendable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
    }

    public private(set) var entries: [Entry] = []
    private var index: [String: Int] = [:]
    public private(set) var count = 0
    /// Parameter values; allocated by `finalize()`.
    public private(set) var values = FloatBuffer(count: 0)
    /// Gradients, same layout as `values` (only when `withGradients`).
    public private(set) var grads = FloatBuffer(count: 0)
    public let withGradients: Bool
    public private(set) var finalized = false

    public init(withGradients: Bool = true) { self.withGradients = withGradients }

    /// Reserves a named tensor and returns its offset into `values` / `grads`.
    /// Offsets are rounded up to 16 floats so every tensor starts 64-byte aligned.
    @discardableResult
    public func register(_ name: String, shape: [Int]) -> Int {
        precondition(!finalized, "ParameterStore: register(\(name)) after finalize")
        precondition(index[name] == nil, "ParameterStore: duplicate name \(name)")
        let offset = (count + 15) & ~15
        entries.append(Entry(name: name, shape: shape, offset: offset))
        index[name] = entries.count - 1
        count = offset + shape.reduce(1, *)
        return offset
    }

    /// Allocates the buffers. Pointers obtained afterwards stay valid for the store's lifetime.
    public func finalize() {
        precondition(!finalized)
        values = FloatBuffer(count: count)
        if withGradients { grads = FloatBuffer(count: count) }
        finalized = true
    }

    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }
    public func value(_ offset: Int) -> UnsafeMutablePointer<Float> { values.ptr + offset }
    public func grad(_ offset: Int) -> UnsafeMutablePointer<Float> { grads.ptr + offset }

    /// Copies of one tensor's values (tests and serialisation; not for hot loops).
    public func array(_ name: String) -> [Float] {
        guard let e = entry(name) else { preconditionFailure("no tensor \(name)") }
        return Array(UnsafeBufferPointer(start: values.ptr + e.offset, count: e.count))
    }
    public func gradArray(_ name: String) -> [Float] {
        guard let e = entry(name) else { preconditionFailure("no tensor \(name)") }
        return Array(UnsafeBufferPointer(start: grads.ptr + e.offset, count: e.count))
    }
    public func set(_ name: String, _ data: [Float]) {
        guard let e = entry(name) else { preconditionFailure("no tensor \(name)") }
        precondition(data.count == e.count, "\(name): \(data.count) values for shape \(e.shape)")
        data.withUnsafeBufferPointer { (values.ptr + e.offset).update(from: $0.baseAddress!, count: e.count) }
    }
}
