import CWinograd
import Foundation

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

    /// Whether the fused kernel's tile GEMMs run on AVX-512's 16-float registers
    /// (`moco_winograd4_fused_avx512`) rather than AVX2's 8-float ones: where the CPU has AVX-512 F,
    /// unless `MOCO_AVX512=0` (for side-by-side runs). Both sum each output over the input
    /// channels in order with one FMA per term, so they give the same bits
    /// (`WinogradFusedTests.testAVX512GivesTheSameBits`). Read once.
    public static let usesAVX512 = isAvailable && moco_winograd4_fused_avx512_available() != 0
        && ProcessInfo.processInfo.environment["MOCO_AVX512"] != "0"

    /// Why the environment's MOCO_AVX512 is not a setting (nil when it is: unset, 1 or 0).
    public static func problem(environment: [String: String]) -> String? {
        guard let v = environment["MOCO_AVX512"], v != "1" && v != "0" else { return nil }
        return "MOCO_AVX512='\(v)' must be 1 (the default: the fused Winograd kernel's AVX-512 tile GEMM where the CPU has it) or 0 (its AVX2 one)"
    }

    /// "avx512" or "avx2": the fused tile GEMM's registers, for the run's log line; "" when the
    /// fused kernel does not run on this CPU.
    public static var kernelName: String { !isAvailable ? "" : usesAVX512 ? "avx512" : "avx2" }

    /// x: [C, N, H, W], u: [36, K, C] -> y: [K, N, H, W] for samples n0..<n0+nb, on the AVX-512
    /// or AVX2 tile GEMM (`usesAVX512`). `ws`: `moco_winograd4_fused_workspace` floats.
    static func run(_ x: UnsafePointer<Float>, _ N: Int, _ n0: Int, _ nb: Int, _ C: Int, _ K: Int, _ H: Int, _ W: Int,
                    _ u: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ ws: UnsafeMutablePointer<Float>) {
        if usesAVX512 {
            moco_winograd4_fused_avx512(x, N, n0, nb, C, K, H, W, u, y, ws)
        } else {
            moco_winograd4_fused_avx2(x, N, n0, nb, C, K, H, W, u, y, ws)
        }
    }

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
