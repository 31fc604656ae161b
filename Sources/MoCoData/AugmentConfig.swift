/// Parameters of the MoCo augmentation pipeline (torchvision transforms):
///
///     RandomResizedCrop(size, scale: cropScale, ratio: ratio)
///     RandomApply([ColorJitter(brightness, contrast, saturation, hue)], p: jitterProb)
///     RandomGrayscale(p: grayscaleProb)
///     RandomApply([GaussianBlur(sigma in blurSigma)], p: blurProb)
///     RandomHorizontalFlip(p: flipProb)
///     ToTensor(); Normalize(dataset mean, std)
///
/// This is MoCo v2's order (Chen et al. 2020, `main_moco.py` with `--aug-plus`). Saturation,
/// hue and grayscale only act on 3-channel images (torchvision leaves 1-channel images
/// unchanged by them).
public struct AugmentConfig: Codable, Sendable, Equatable {
    /// RandomResizedCrop: fraction of the image area, and the log-uniform aspect ratio (w/h).
    public var cropScaleMin: Float = 0.2
    public var cropScaleMax: Float = 1.0
    public var ratioMin: Float = 3.0 / 4.0
    public var ratioMax: Float = 4.0 / 3.0
    public var flipProb: Float = 0.5
    /// ColorJitter: factors uniform in [max(0, 1 - x), 1 + x] for brightness, contrast,
    /// saturation; hue shift uniform in [-hue, hue] (fraction of the colour wheel).
    public var jitterProb: Float = 0.8
    public var brightness: Float = 0.4
    public var contrast: Float = 0.4
    public var saturation: Float = 0.4
    public var hue: Float = 0.1
    public var grayscaleProb: Float = 0.2
    /// GaussianBlur: sigma uniform in [blurSigmaMin, blurSigmaMax]; kernel `blurKernel` (by
    /// default `blurKernelSize(forImageSide:)`: 10% of the side, made odd, 23 for 224 as in MoCo v2).
    public var blurProb: Float = 0.5
    public var blurSigmaMin: Float = 0.1
    public var blurSigmaMax: Float = 2.0
    /// The blur's support and edges (`BlurKernel`); `auto` is SimCLR's 10%-of-the-side kernel.
    public var blurKernel: BlurKernel = .auto

    public init(cropScaleMin: Float = 0.2, cropScaleMax: Float = 1.0, ratioMin: Float = 3.0 / 4.0,
                ratioMax: Float = 4.0 / 3.0, flipProb: Float = 0.5, jitterProb: Float = 0.8,
                brightness: Float = 0.4, contrast: Float = 0.4, saturation: Float = 0.4, hue: Float = 0.1,
                grayscaleProb: Float = 0.2, blurProb: Float = 0.5, blurSigmaMin: Float = 0.1,
                blurSigmaMax: Float = 2.0, blurKernel: BlurKernel = .auto) {
        self.cropScaleMin = cropScaleMin; self.cropScaleMax = cropScaleMax
        self.ratioMin = ratioMin; self.ratioMax = ratioMax
        self.flipProb = flipProb
        self.jitterProb = jitterProb
        self.brightness = brightness; self.contrast = contrast; self.saturation = saturation; self.hue = hue
        self.grayscaleProb = grayscaleProb
        self.blurProb = blurProb; self.blurSigmaMin = blurSigmaMin; self.blurSigmaMax = blurSigmaMax
        self.blurKernel = blurKernel
    }

    /// Reads every field that is present and keeps the default of any that is not, so that
    /// configurations written before a field existed (`blurKernel`) still read as they ran.
    public init(from decoder: Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func read<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
            if let v = try c.decodeIfPresent(T.self, forKey: key) { value = v }
        }
        try read(.cropScaleMin, &cropScaleMin); try read(.cropScaleMax, &cropScaleMax)
        try read(.ratioMin, &ratioMin); try read(.ratioMax, &ratioMax); try read(.flipProb, &flipProb)
        try read(.jitterProb, &jitterProb); try read(.brightness, &brightness); try read(.contrast, &contrast)
        try read(.saturation, &saturation); try read(.hue, &hue); try read(.grayscaleProb, &grayscaleProb)
        try read(.blurProb, &blurProb); try read(.blurSigmaMin, &blurSigmaMin); try read(.blurSigmaMax, &blurSigmaMax)
        try read(.blurKernel, &blurKernel)
    }

    /// MoCo v2 ("aug+"): crop (0.2, 1), jitter (0.4, 0.4, 0.4, 0.1) with p 0.8, grayscale 0.2,
    /// blur sigma [0.1, 2] with p 0.5, flip.
    public static let mocoV2 = AugmentConfig()

    /// MoCo v1 (He et al. 2020): as v2 without the blur. (The original `main_moco.py` applies
    /// ColorJitter(0.4, 0.4, 0.4, 0.4) always and grayscale before it; this preset keeps v2's
    /// jitter settings so v1 and v2 differ only by the blur.)
    public static let mocoV1 = AugmentConfig(blurProb: 0)

    /// No augmentation: the full image, unflipped, uncoloured, unblurred (for square images
    /// `augment` then equals `normalizedImage` exactly).
    public static let identity = AugmentConfig(cropScaleMin: 1, cropScaleMax: 1, ratioMin: 1, ratioMax: 1,
                                               flipProb: 0, jitterProb: 0, grayscaleProb: 0, blurProb: 0)

    /// SimCLR's colour-distortion strength s (Chen et al. 2020, "A Simple Framework for
    /// Contrastive Learning of Visual Representations", App. A): ColorJitter(0.8 s, 0.8 s, 0.8 s,
    /// 0.2 s). MoCo v2's (0.4, 0.4, 0.4, 0.1) is s = 0.5.
    public mutating func setJitterStrength(_ s: Float) {
        brightness = 0.8 * s; contrast = 0.8 * s; saturation = 0.8 * s; hue = 0.2 * s
    }

    /// Every value in its range, or a message naming the first that is not (the `moco train`
    /// flag where there is one).
    public func problem() -> String? {
        func bad(_ x: Float) -> Bool { !x.isFinite }
        if bad(cropScaleMin) || bad(cropScaleMax) || !(cropScaleMin > 0 && cropScaleMin <= cropScaleMax && cropScaleMax <= 1) {
            return "crop scale must satisfy 0 < --crop-min-scale <= --crop-max-scale <= 1 (got \(cropScaleMin), \(cropScaleMax))"
        }
        if bad(ratioMin) || bad(ratioMax) || !(ratioMin > 0 && ratioMin <= ratioMax) {
            return "crop aspect ratio must satisfy 0 < --crop-ratio-min <= --crop-ratio-max (got \(ratioMin), \(ratioMax))"
        }
        for (name, p) in [("--flip-prob", flipProb), ("--jitter-prob", jitterProb), ("--blur-prob", blurProb),
                          ("grayscale probability", grayscaleProb)] where !(p >= 0 && p <= 1) {
            return "\(name) must be in [0, 1] (got \(p))"
        }
        for (name, x) in [("brightness", brightness), ("contrast", contrast), ("saturation", saturation)] where !(x >= 0 && x.isFinite) {
            return "colour jitter \(name) must be >= 0 (got \(x); --jitter-strength sets 0.8 x strength)"
        }
        if !(hue >= 0 && hue <= 0.5) { return "colour jitter hue must be in [0, 0.5] (got \(hue); --jitter-strength sets 0.2 x strength)" }
        if bad(blurSigmaMin) || bad(blurSigmaMax) || !(blurSigmaMin > 0 && blurSigmaMin <= blurSigmaMax) {
            return "blur sigma must satisfy 0 < min <= --blur-sigma-max (got \(blurSigmaMin), \(blurSigmaMax))"
        }
        return nil
    }

    /// Odd Gaussian kernel size for an image side: round-down of 10% of it, plus one if even
    /// (224 -> 23, 32 -> 3, 28 -> 3), at least 3.
    public static func blurKernelSize(forImageSide side: Int) -> Int {
        let k = max(3, side / 10)
        return k % 2 == 0 ? k + 1 : k
    }
}
