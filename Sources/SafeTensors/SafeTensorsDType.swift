/// Element types this module reads and writes, spelled as in the safetensors header's `"dtype"` field.
///
/// The format defines more (F16, BF16, I32, U8, ...); files holding those are rejected with an
/// error naming the tensor and the dtype.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    /// IEEE-754 binary32, little-endian.
    case f32 = "F32"
    /// Two's-complement 64-bit integer, little-endian.
    case i64 = "I64"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f32: return 4
        case .i64: return 8
        }
    }
}

/// Metadata of one tensor in a safetensors file, as given by its header entry.
public struct SafeTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafeTensorsDType
    /// Dimensions, outermost first; `[]` is a scalar (one element).
    public let shape: [Int]
    /// Byte offsets `[begin, end)` relative to the start of the data section (after the header).
    public let begin: Int
    public let end: Int

    public init(name: String, dtype: SafeTensorsDType, shape: [Int], begin: Int, end: Int) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.begin = begin
        self.end = end
    }

    /// Number of elements: the product of `shape` (1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }
    /// Number of data bytes, `end - begin`.
    public var byteCount: Int { end - begin }
}

/// Formats a shape the way the error messages and PyTorch print it: `[16, 3, 3, 3]`.
@inline(__always)
func formatShape(_ shape: [Int]) -> String {
    "[" + shape.map(String.init).joined(separator: ", ") + "]"
}
