import MoCoTensor

/// The augmentation's random choices and output statistics over many views, as the training
/// loader draws them (`TwoCropLoader.viewGenerator`): the swift-moco side of the comparison with
/// torchvision's transforms (`moco augstats`, `scripts/augment_stats.py`).
public struct AugmentRecorder {
    /// Per view, in order (view k is view k % 2 of image k / 2).
    public var params: [AugmentParams] = []
    /// 256 bins of the un-normalised output pixels, bin = round(255 x), x in 0...1.
    public var histogram = [Int](repeating: 0, count: 256)
    /// Per view: mean and standard deviation of its un-normalised pixels.
    public var viewMean: [Double] = [], viewStd: [Double] = []
    /// The first views' un-normalised pixels, [C * H * W] each.
    public var dumped: [[Float]] = []

    public static func record(_ ds: Dataset, config: AugmentConfig, seed: UInt64, epoch: Int, views: Int,
                              dump: Int) -> AugmentRecorder {
        var r = AugmentRecorder()
        let c = ds.channels, n = ds.height * ds.width, size = c * n
        let out = UnsafeMutablePointer<Float>.allocate(capacity: size)
        defer { out.deallocate() }
        r.params.reserveCapacity(views)
        for k in 0..<views {
            let index = k / 2, view = k % 2
            var rng = TwoCropLoader.viewGenerator(seed: seed, epoch: epoch, index: index, view: view)
            let p = AugmentParams(height: ds.height, width: ds.width, config: config, rng: &rng)
            applyAugment(ds, index: index, params: p, config: config, out: out)
            // Undo Normalize: x = y * std[c] + mean[c].
            for ch in 0..<c {
                let m = ds.mean[ch], s = ds.std[ch], plane = out + ch * n
                for j in 0..<n { plane[j] = plane[j] * s + m }
            }
            var sum = 0.0, sq = 0.0
            for j in 0..<size {
                let x = Double(out[j])
                sum += x; sq += x * x
                r.histogram[min(255, max(0, Int((x * 255).rounded())))] += 1
            }
            let mean = sum / Double(size)
            r.viewMean.append(mean)
            r.viewStd.append(max(0, sq / Double(size) - mean * mean).squareRoot())
            r.params.append(p)
            if k < dump { r.dumped.append(Array(UnsafeBufferPointer(start: out, count: size))) }
        }
        return r
    }

    /// Column-wise JSON: one array per field (`top`, `left`, `height`, `width`, `flip`,
    /// `jitter` (0/1), `jitter_order` (4 digits, e.g. "2031", "" without jitter), `brightness`,
    /// `contrast`, `saturation`, `hue`, `grayscale`, `blur_sigma`), plus `histogram`,
    /// `view_mean`, `view_std` and `dump` (`{"pixels": [[...]]}`, views 0 ..< count).
    public var json: [String: Any] {
        func col<T>(_ f: (AugmentParams) -> T) -> [T] { params.map(f) }
        return [
            "views": params.count,
            "top": col { $0.box.top }, "left": col { $0.box.left },
            "height": col { $0.box.height }, "width": col { $0.box.width },
            "flip": col { $0.flip ? 1 : 0 },
            "jitter": col { $0.jitterOrder.isEmpty ? 0 : 1 },
            "jitter_order": col { $0.jitterOrder.map(String.init).joined() },
            "brightness": col { Double($0.brightness) }, "contrast": col { Double($0.contrast) },
            "saturation": col { Double($0.saturation) }, "hue": col { Double($0.hue) },
            "grayscale": col { $0.grayscale ? 1 : 0 },
            "blur_sigma": col { Double($0.blurSigma) },
            "histogram": histogram,
            "view_mean": viewMean, "view_std": viewStd,
            "dump": ["pixels": dumped.map { $0.map(Double.init) }],
        ]
    }
}
