/// The support of the augmentation's Gaussian blur, and its edge handling.
///
/// - `auto`: SimCLR's rule (Chen et al. 2020, App. A: "kernel size 10% of the image side"),
///   made odd (`AugmentConfig.blurKernelSize`), reflect padding: torchvision's `GaussianBlur`
///   with that kernel size. 3 taps at 28 or 32 pixels.
/// - `size(k)`: a k-tap kernel (k odd), reflect padding.
/// - `full`: taps out to ceil(3 sigma) on each side (at most the image side minus one), edges
///   replicated: the Gaussian that MoCo's official loader applies through Pillow's
///   `ImageFilter.GaussianBlur(radius = sigma)` (support not truncated to a kernel size, edges
///   extended; Pillow approximates it by three extended box blurs, Gwosdek et al. 2011, which
///   this does not copy: docs/training.md has the measured difference).
///
/// Coded as the string `auto`, `full` or the kernel size (`--blur-kernel`).
public enum BlurKernel: Equatable, Sendable {
    case auto
    case size(Int)
    case full

    public enum Edge: Sendable { case reflect, replicate }

    /// Taps and edge mode for one view. side: min(H, W); sigma > 0.
    public func resolve(side: Int, sigma: Float) -> (size: Int, edge: Edge) {
        let largest = 2 * (side - 1) + 1
        switch self {
        case .auto: return (min(AugmentConfig.blurKernelSize(forImageSide: side), largest), .reflect)
        case .size(let k): return (min(k, largest), .reflect)
        case .full:
            let r = min(Int((3 * sigma).rounded(.up)), side - 1)
            return (2 * max(r, 1) + 1, .replicate)
        }
    }
}

extension BlurKernel: LosslessStringConvertible {
    public init?(_ s: String) {
        switch s {
        case "auto": self = .auto
        case "full": self = .full
        default:
            guard let k = Int(s), k > 0, k % 2 == 1 else { return nil }
            self = .size(k)
        }
    }

    public var description: String {
        switch self {
        case .auto: "auto"
        case .full: "full"
        case .size(let k): String(k)
        }
    }
}

extension BlurKernel: Codable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        guard let k = BlurKernel(s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "blur kernel '\(s)': expected auto, full or an odd size")
        }
        self = k
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
