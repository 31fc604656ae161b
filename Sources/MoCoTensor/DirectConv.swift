import CDirectConv

/// Direct convolution on AVX2 + FMA (`CDirectConv`) for strided convolutions, which neither
/// Winograd nor a plain GEMM covers: ResNet's 3x3 stride-2 downsampling layers.
///
///     y[k, n, oy, ox] = Σ_c Σ_i Σ_j w[k, c, i, j] · xpad[c, n, oy·s + i, ox·s + j]
///
/// Per sample, the padded input is split once into its s column phases
/// P[r][c][φ][q] = xpad[c][r][q·s + φ]; tap (i, j) of an output row is then the contiguous run
/// P[oy·s + i][c][j mod s][⌊j/s⌋ ...]. A tile of 6 output channels x 16 positions stays in
/// registers while the sum runs over c, i, j in that order. Against im2col + GEMM it never
/// writes the k²-times larger column matrix, and its tiles fit K = 32 or 64 output channels,
/// where OpenBLAS's packing is most of the work (`moco bench ops`: docs/performance.md).
public enum DirectConv {
    /// Whether this CPU runs the kernel (AVX2 and FMA).
    public static let isAvailable = moco_direct_conv_available() != 0

    /// Whether the kernel computes this convolution: the CPU has it, the stride is above 1, the
    /// kernel is 2x2 to 8x8, and at least 3/4 of each tile's lanes are output positions (tiles
    /// are 2 rows x 8 columns for Wo <= 8, else 16-column blocks of one row): 7x7, 8x8, 14x14,
    /// 16x16 outputs, not 4x4. A strided 1x1 convolution stays on im2col + GEMM, where im2col
    /// is a plain subsampling: with only C products per output the kernel's per-tile work
    /// dominates (`moco bench ops --arch resnet20 --batch 256 --threads 1`: ResNet-20's 1x1
    /// downsampling layers 0.66-0.85x of im2col; its 3x3 stride-2 layers 1.15-1.35x).
    public static func applies(_ g: ConvGeometry) -> Bool {
        isAvailable && g.stride > 1 && g.kernel > 1 && g.kernel <= 8 && moco_direct_conv_utilization(g.outWidth) >= 75
    }

    /// Floats of one worker's phase planes.
    public static func workspaceFloats(_ g: ConvGeometry) -> Int {
        moco_direct_conv_workspace(g.channels, g.height, g.width, g.kernel, g.stride, g.padding)
    }

    /// w: [K, C, k, k] -> wp: K·C·k·k floats in the kernel's order (blocks of 6 output channels).
    public static func packFilter(_ w: UnsafePointer<Float>, outChannels K: Int, geometry g: ConvGeometry,
                                  into wp: UnsafeMutablePointer<Float>) {
        moco_direct_conv_pack_filter(w, K, g.channels, g.kernel, wp)
    }

    /// x: [C, N, H, W] (samples n0..<n0+nb), packed filter wp -> y: [K, N, Ho, Wo] (those samples written).
    /// workspace: `workspaceFloats(g)` floats, private to the caller.
    public static func forward(_ x: UnsafePointer<Float>, batch N: Int, first n0: Int, count nb: Int,
                               geometry g: ConvGeometry, outChannels K: Int, filter wp: UnsafePointer<Float>,
                               output y: UnsafeMutablePointer<Float>, workspace: UnsafeMutablePointer<Float>) {
        moco_direct_conv_avx2(x, N, n0, nb, g.channels, g.height, g.width, K, g.kernel, g.stride, g.padding,
                              wp, y, workspace)
    }
}
