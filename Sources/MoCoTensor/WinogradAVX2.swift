import CWinograd

/// Whether F(4×4, 3×3)'s transforms run on the AVX2 kernels of `CWinograd` (input, output and
/// output-gradient transforms, with their interleaving of 8 samples as 8×8 transposes) instead of
/// the portable Swift path of `Winograd.swift`, which the binary's baseline x86-64 target
/// compiles to SSE. Both compute the same operations in the same order: same bits
/// (`WinogradAVX2Tests`). Read once from the CPU.
public enum WinogradAVX2 {
    public static let isAvailable = moco_winograd4_avx2_available() != 0
}
