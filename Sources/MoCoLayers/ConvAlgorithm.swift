import MoCoTensor

/// How 3x3 stride-1 padding-1 convolutions compute their forward pass and input gradient.
/// (Every other convolution uses im2col + GEMM; the weight gradient: `WeightGradAlgorithm`.)
public enum ConvAlgorithm: String, Sendable, CaseIterable, Codable {
    /// im2col + one GEMM per chunk of samples.
    case im2col
    /// Winograd F(2×2, 3×3) (`WinogradVariant.f2x2`).
    case winograd2
    /// Winograd F(4×4, 3×3) (`WinogradVariant.f4x4`), and F(2×2, 3×3) on maps of 4 or fewer
    /// rows or columns, where F(4×4) has one tile per sample and its GEMMs too few columns for
    /// their 36·K·C-float filter (ResNet-18's 4x4 layer, `moco bench ops --batch 64 --threads 1`:
    /// F(4×4) 68 ms, F(2×2) 52 ms, im2col 86 ms forward).
    case winograd4

    /// The Winograd variant for a map of `height` x `width` (nil: im2col).
    public func variant(height: Int, width: Int) -> WinogradVariant? {
        switch self {
        case .im2col: nil
        case .winograd2: .f2x2
        case .winograd4: height > 4 && width > 4 ? .f4x4 : .f2x2
        }
    }

    /// Layers with fewer input or output channels stay on im2col (the stem, C = 1 or 3): the
    /// Winograd GEMMs have C as their inner dimension, and with a handful of channels the
    /// transforms cost more than the multiplications they save.
    public static let winogradMinChannels = 8

    /// The accepted names, for error messages.
    public static var choices: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// How the weight gradient of a convolution that runs on Winograd (`ConvAlgorithm`) is computed.
public enum WeightGradAlgorithm: String, Sendable, CaseIterable, Codable {
    /// dW[K, C·9] = dY[K, NHW] @ im2col(x)ᵀ per chunk of samples.
    case im2col
    /// In the layer's Winograd domain (`WinogradVariant.weightGrad3x3`): α² GEMMs
    /// dU[ξ][K, C] += dM[ξ][K, T] @ V[ξ][C, T]ᵀ over the tiles T, then dW = Gᵀ dU G; for
    /// F(4×4, 3×3) 36/144 of im2col's multiplications, and no 9x-sized column matrix.
    case winograd

    /// The accepted names, for error messages.
    public static var choices: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// How the forward pass of a strided convolution with a kernel of 2x2 or more (ResNet's 3x3
/// stride-2 layers) is computed; its backward, and strided 1x1 layers, stay on im2col + GEMM.
public enum StridedConvAlgorithm: String, Sendable, CaseIterable, Codable {
    /// im2col + one GEMM per chunk of samples.
    case im2col
    /// `DirectConv` (AVX2 + FMA) where it applies (`DirectConv.applies`), else im2col.
    case direct

    /// The accepted names, for error messages.
    public static var choices: String { allCases.map(\.rawValue).joined(separator: ", ") }
}
