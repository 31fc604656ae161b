/// Colour operations of `torchvision.transforms.functional` on float images in 0...1, in place.
/// Each is the tensor implementation's formula: a blend `clamp(f * img + (1 - f) * other)`
/// with a degenerate image `other` (Haeberli and Voorhies 1994, "Image processing by
/// interpolation and extrapolation"), or the HSV round trip for hue.

/// ITU-R 601-2 luma weights (`rgb_to_grayscale`).
@usableFromInline let lumaR: Float = 0.2989, lumaG: Float = 0.587, lumaB: Float = 0.114

/// `adjust_brightness`: blend with black, `clamp(f * img)`.
/// img: [C, H, W] in place
public func adjustBrightness(_ img: UnsafeMutablePointer<Float>, count: Int, factor: Float) {
    for k in 0..<count { img[k] = min(1, max(0, img[k] * factor)) }
}

/// `adjust_contrast`: blend with the mean of the grayscale image (one scalar for the whole
/// image): `clamp(f * img + (1 - f) * mean(gray))`.
/// img: [C, H, W] in place, C = 1 or 3
public func adjustContrast(_ img: UnsafeMutablePointer<Float>, channels: Int, planeSize n: Int, factor: Float) {
    var sum: Float = 0
    if channels == 3 {
        let r = img, g = img + n, b = img + 2 * n
        for k in 0..<n { sum += lumaR * r[k] + lumaG * g[k] + lumaB * b[k] }
    } else {
        for k in 0..<(channels * n) { sum += img[k] }
        sum /= Float(channels)
    }
    let offset = (1 - factor) * (sum / Float(n))
    for k in 0..<(channels * n) { img[k] = min(1, max(0, factor * img[k] + offset)) }
}

/// `adjust_saturation`: blend each pixel with its own gray value. No-op unless C = 3.
/// img: [3, H, W] in place
public func adjustSaturation(_ img: UnsafeMutablePointer<Float>, channels: Int, planeSize n: Int, factor: Float) {
    guard channels == 3 else { return }
    let r = img, g = img + n, b = img + 2 * n
    let keep = 1 - factor
    for k in 0..<n {
        let gray = keep * (lumaR * r[k] + lumaG * g[k] + lumaB * b[k])
        r[k] = min(1, max(0, factor * r[k] + gray))
        g[k] = min(1, max(0, factor * g[k] + gray))
        b[k] = min(1, max(0, factor * b[k] + gray))
    }
}

/// `adjust_hue`: RGB -> HSV (torchvision's `_rgb2hsv`), `h = (h + shift) mod 1`, HSV -> RGB
/// (`_hsv2rgb`). `shift` in [-0.5, 0.5]. No-op unless C = 3.
/// img: [3, H, W] in place
public func adjustHue(_ img: UnsafeMutablePointer<Float>, channels: Int, planeSize n: Int, shift: Float) {
    guard channels == 3 else { return }
    let rp = img, gp = img + n, bp = img + 2 * n
    for k in 0..<n {
        let r = rp[k], g = gp[k], b = bp[k]
        let maxc = max(r, max(g, b)), minc = min(r, min(g, b))
        let cr = maxc - minc
        let s = cr / (cr == 0 ? 1 : maxc)
        let d = cr == 0 ? 1 : cr
        let rc = (maxc - r) / d, gc = (maxc - g) / d, bc = (maxc - b) / d
        var h: Float
        if maxc == r { h = bc - gc } else if maxc == g { h = 2 + rc - bc } else { h = 4 + gc - rc }
        h = h / 6 + 1
        h -= h.rounded(.down)
        h += shift
        h -= h.rounded(.down)            // (h + shift) mod 1, in [0, 1)
        let v = maxc
        let h6 = h * 6
        let fi = h6.rounded(.down)
        let f = h6 - fi
        let i = Int(fi) % 6
        let p = min(1, max(0, v * (1 - s)))
        let q = min(1, max(0, v * (1 - s * f)))
        let t = min(1, max(0, v * (1 - s * (1 - f))))
        switch i {
        case 0: rp[k] = v; gp[k] = t; bp[k] = p
        case 1: rp[k] = q; gp[k] = v; bp[k] = p
        case 2: rp[k] = p; gp[k] = v; bp[k] = t
        case 3: rp[k] = p; gp[k] = q; bp[k] = v
        case 4: rp[k] = t; gp[k] = p; bp[k] = v
        default: rp[k] = v; gp[k] = p; bp[k] = q
        }
    }
}

/// `rgb_to_grayscale` with 3 output channels (RandomGrayscale keeps the channel count).
/// No-op unless C = 3.
/// img: [3, H, W] in place
public func grayscale(_ img: UnsafeMutablePointer<Float>, channels: Int, planeSize n: Int) {
    guard channels == 3 else { return }
    let r = img, g = img + n, b = img + 2 * n
    for k in 0..<n {
        let y = lumaR * r[k] + lumaG * g[k] + lumaB * b[k]
        r[k] = y; g[k] = y; b[k] = y
    }
}
