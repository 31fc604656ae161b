/// How the engine computes, passed down from the configuration to every layer that needs it
/// (configuration -> encoder -> convolution, BatchNorm, elementwise kernels): no process-wide
/// switch, so encoders with different settings coexist in one process.
public struct EngineConfig: Codable, Equatable, Sendable {
    /// Engine workers per rank: convolutions split their batch, BatchNorm its channels and
    /// large GEMMs their output over this many threads (OpenBLAS itself runs on one).
    public var threads = 1
    /// Algorithm of the 3x3 stride-1 padding-1 convolutions (forward and dX).
    public var conv: ConvAlgorithm = .winograd4
    /// Weight gradient of the layers `conv` runs on Winograd. A configuration saved without
    /// this key (before it existed) reads as `.im2col`, so that its runs resume exactly.
    public var weightGrad: WeightGradAlgorithm = .winograd
    /// Forward of the strided 3x3 convolutions. A configuration saved without this key (before it
    /// existed) reads as `.im2col`, so that its runs resume exactly.
    public var strided: StridedConvAlgorithm = .direct
    /// Maximum floats of one worker's im2col columns per GEMM chunk: 2^18 floats (1 MiB) keeps
    /// the columns in the last-level cache while each GEMM still has thousands of columns.
    public var im2colChunkFloats = 1 << 18
    /// Maximum floats of one worker's Winograd chunk (transformed inputs and outputs).
    public var winogradChunkFloats = 1 << 19

    public init(threads: Int = 1, conv: ConvAlgorithm = .winograd4, weightGrad: WeightGradAlgorithm = .winograd,
                strided: StridedConvAlgorithm = .direct) {
        self.threads = max(1, threads); self.conv = conv; self.weightGrad = weightGrad; self.strided = strided
    }
}

extension EngineConfig {
    /// Reads every field that is present and keeps the default of any that is not.
    public init(from decoder: Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        threads = try c.decodeIfPresent(Int.self, forKey: .threads) ?? threads
        conv = try c.decodeIfPresent(ConvAlgorithm.self, forKey: .conv) ?? conv
        weightGrad = try c.decodeIfPresent(WeightGradAlgorithm.self, forKey: .weightGrad) ?? .im2col
        strided = try c.decodeIfPresent(StridedConvAlgorithm.self, forKey: .strided) ?? .im2col
        im2colChunkFloats = try c.decodeIfPresent(Int.self, forKey: .im2colChunkFloats) ?? im2colChunkFloats
        winogradChunkFloats = try c.decodeIfPresent(Int.self, forKey: .winogradChunkFloats) ?? winogradChunkFloats
    }
}
