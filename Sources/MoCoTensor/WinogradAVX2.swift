import CWinograd

/// Whether F(4×4, 3×3)'s transforms run on the AVX2 kernels of `CWinograd` (input, output and
/// output-gradient transforms, with their interleaving of 8 samples as 8×8 transposes) instead of
/// the portable Swift path of `Winograd.swift`, which the binary's baseline x86-64 target
/// compiles to SSE. Both compute the same operations in the same order: same bits
/// (`WinogradAVX2Tests`). Read once from the CPU.
public enum WinogradAVX2 {
    public static let isAvailable = moco_winograd4_avx2_available() != 0
}

/// Whether an F(4×4, 3×3) convolution runs fused (`moco_winograd4_fused_avx2`): per group of 8
/// samples and row of output tiles, input transform, tile GEMMs (its own AVX2 + FMA kernel) and
/// output transform on a band that stays in L2, instead of three passes over the whole chunk
/// with OpenBLAS's GEMMs in between. Only where the transformed filters U [36, K, C], which
/// every band reads again, are no larger than the band's transformed tiles (36·(C + K)·8·⌈W/4⌉
/// floats): ResNet-20's 16- and 32-channel stages and ResNet-18's 64-channel stage, not the
/// wide stages on small maps, where the unfused path's large GEMMs read U once per chunk.
public enum WinogradFused {
    public static let isAvailable = moco_winograd4_fused_available() != 0

    public static func applies(inChannels C: Int, outChannels K: Int, width W: Int) -> Bool {
        isAvailable && K * C <= (C + K) * 8 * ((W + 3) / 4)
    }
}

extension WinogradVariant {
    /// Whether `conv3x3` of this variant runs the fused kernel for these channels and width.
    public func runsFused(inChannels C: Int, outChannels K: Int, width W: Int) -> Bool {
        self == .f4x4 && WinogradFused.applies(inChannels: C, outChannels: K, width: W)
    }
}
