import MoCoTensor

/// The random choices of one augmented view, drawn in this order from the view's generator:
/// crop box (RandomResizedCrop), jitter coin, then (if jittering) the order of the four
/// ColorJitter operations (`torch.randperm(4)`) and the brightness, contrast, saturation and
/// hue factors, grayscale coin, blur coin and (if blurring) sigma, flip coin. All draws happen
/// whatever the channel count, so a 1-channel and a 3-channel image consume the same stream.
public struct AugmentParams: Equatable, Sendable {
    public var box: CropBox
    /// Jitter operation order (0 brightness, 1 contrast, 2 saturation, 3 hue); empty = no jitter.
    public var jitterOrder: [Int]
    public var brightness: Float = 1, contrast: Float = 1, saturation: Float = 1, hue: Float = 0
    public var grayscale: Bool
    /// 0 = no blur.
    public var blurSigma: Float
    public var flip: Bool

    public init(height: Int, width: Int, config: AugmentConfig, rng: inout Xoshiro) {
        box = sampleCropBox(height: height, width: width, config: config, rng: &rng)
        jitterOrder = []
        if rng.uniform() < config.jitterProb {
            jitterOrder = rng.permutation(4)
            // torchvision ColorJitter: factor ~ U(max(0, 1 - x), 1 + x); hue ~ U(-h, h).
            brightness = rng.uniform(max(0, 1 - config.brightness), 1 + config.brightness)
            contrast = rng.uniform(max(0, 1 - config.contrast), 1 + config.contrast)
            saturation = rng.uniform(max(0, 1 - config.saturation), 1 + config.saturation)
            hue = rng.uniform(-config.hue, config.hue)
        }
        grayscale = rng.uniform() < config.grayscaleProb
        blurSigma = 0
        if rng.uniform() < config.blurProb {
            blurSigma = rng.uniform(config.blurSigmaMin, config.blurSigmaMax)
        }
        flip = rng.uniform() < config.flipProb
    }
}

/// One augmented view of image `index` (see `AugmentConfig` for the pipeline), normalised with
/// the dataset's mean and std. Deterministic in `rng`'s state.
///
/// The horizontal flip is folded into the crop's resampling: every later operation acts on
/// each pixel alone or (the blur) with a mirror-symmetric kernel and reflect padding, so
/// flipping first or last gives the same image.
///
/// out: [C, H, W] floats
public func augment(_ ds: Dataset, index: Int, config: AugmentConfig, rng: inout Xoshiro,
                    out: UnsafeMutablePointer<Float>) {
    let p = AugmentParams(height: ds.height, width: ds.width, config: config, rng: &rng)
    applyAugment(ds, index: index, params: p, config: config, out: out)
}

/// Applies already drawn parameters. out: [C, H, W] floats
public func applyAugment(_ ds: Dataset, index: Int, params p: AugmentParams, config: AugmentConfig,
                         out: UnsafeMutablePointer<Float>) {
    precondition(index >= 0 && index < ds.count, "augment: index \(index) outside 0..<\(ds.count)")
    let c = ds.channels, h = ds.height, w = ds.width, n = h * w
    ds.pixels.withUnsafeBufferPointer { px in
        resizedCrop(src: px.baseAddress! + index * c * n, channels: c, height: h, width: w, box: p.box,
                    flip: p.flip, outHeight: h, outWidth: w, dst: out)
    }
    for op in p.jitterOrder {
        switch op {
        case 0: adjustBrightness(out, count: c * n, factor: p.brightness)
        case 1: adjustContrast(out, channels: c, planeSize: n, factor: p.contrast)
        case 2: adjustSaturation(out, channels: c, planeSize: n, factor: p.saturation)
        default: adjustHue(out, channels: c, planeSize: n, shift: p.hue)
        }
    }
    if p.grayscale { grayscale(out, channels: c, planeSize: n) }
    if p.blurSigma > 0 {
        let (k, edge) = config.blurKernel.resolve(side: min(h, w), sigma: p.blurSigma)
        let kernel = gaussianKernel1D(size: k, sigma: p.blurSigma)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: c * n) { tmp in
            kernel.withUnsafeBufferPointer { kp in
                gaussianBlur(out, tmp: tmp.baseAddress!, channels: c, height: h, width: w,
                             kernel: kp.baseAddress!, size: k, edge: edge)
            }
        }
    }
    normalizeInPlace(out, channels: c, planeSize: n, mean: ds.mean, std: ds.std)
}

/// The image without augmentation: ToTensor then Normalize. out: [C, H, W] floats
public func normalizedImage(_ ds: Dataset, index: Int, out: UnsafeMutablePointer<Float>) {
    precondition(index >= 0 && index < ds.count, "normalizedImage: index \(index) outside 0..<\(ds.count)")
    let n = ds.imageSize
    let inv255: Float = 1.0 / 255.0
    ds.pixels.withUnsafeBufferPointer { px in
        let src = px.baseAddress! + index * n
        for k in 0..<n { out[k] = Float(src[k]) * inv255 }
    }
    normalizeInPlace(out, channels: ds.channels, planeSize: ds.height * ds.width, mean: ds.mean, std: ds.std)
}

/// `Normalize(mean, std)`: (x - mean[c]) / std[c]. img: [C, H, W] in place
func normalizeInPlace(_ img: UnsafeMutablePointer<Float>, channels: Int, planeSize n: Int, mean: [Float], std: [Float]) {
    for c in 0..<channels {
        let m = mean[c], s = std[c]
        let plane = img + c * n
        for k in 0..<n { plane[k] = (plane[k] - m) / s }
    }
}
