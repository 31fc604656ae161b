import Foundation
import MoCoTensor

/// A crop rectangle in source pixels: rows top..<top+height, columns left..<left+width.
public struct CropBox: Equatable, Sendable {
    public var top: Int, left: Int, height: Int, width: Int
    public init(top: Int, left: Int, height: Int, width: Int) {
        self.top = top; self.left = left; self.height = height; self.width = width
    }
}

/// `torchvision.transforms.RandomResizedCrop.get_params`: up to 10 attempts drawing a target
/// area `scale ~ U(scaleMin, scaleMax)` times the image area and a log-uniform aspect ratio
/// `r = exp(U(log ratioMin, log ratioMax))`, giving `w = round(sqrt(area * r))`,
/// `h = round(sqrt(area / r))`; the first that fits is placed uniformly at random. If none
/// fits, the fallback is the centre crop of the largest box with the ratio clamped into range.
public func sampleCropBox(height: Int, width: Int, config: AugmentConfig, rng: inout Xoshiro) -> CropBox {
    let area = Float(height * width)
    let logMin = log(config.ratioMin), logMax = log(config.ratioMax)
    for _ in 0..<10 {
        let target = area * rng.uniform(config.cropScaleMin, config.cropScaleMax)
        let ratio = exp(rng.uniform(logMin, logMax))
        let w = Int((target * ratio).squareRoot().rounded(.toNearestOrEven))
        let h = Int((target / ratio).squareRoot().rounded(.toNearestOrEven))
        if w > 0 && w <= width && h > 0 && h <= height {
            let top = rng.below(height - h + 1)
            let left = rng.below(width - w + 1)
            return CropBox(top: top, left: left, height: h, width: w)
        }
    }
    let inRatio = Float(width) / Float(height)
    var w = width, h = height
    if inRatio < config.ratioMin {
        h = Int((Float(w) / config.ratioMin).rounded(.toNearestOrEven))
    } else if inRatio > config.ratioMax {
        w = Int((Float(h) * config.ratioMax).rounded(.toNearestOrEven))
    }
    return CropBox(top: (height - h) / 2, left: (width - w) / 2, height: h, width: w)
}

/// Crops `box` out of a byte image and resizes it bilinearly to outH x outW, optionally
/// mirrored left-right, scaling bytes to 0...1 (ToTensor).
///
/// Sampling follows `torch.nn.functional.interpolate(mode: "bilinear", align_corners: False)`:
/// output pixel centre x maps to source `(x + 0.5) * w / outW - 0.5`, clamped into the crop
/// (edge replication); no antialiasing. Since the crop is never larger than the output here
/// (MoCo resizes back to the input size), the resize only upsamples and antialiasing would
/// not change it. A crop of the whole image maps every pixel onto itself exactly. Working in
/// Float (not PIL's 8-bit intermediate images) differs from torchvision by < 1/255.
///
/// src: [C, H, W] bytes -> dst: [C, outH, outW] floats in 0...1
public func resizedCrop(src: UnsafePointer<UInt8>, channels: Int, height: Int, width: Int, box: CropBox,
                        flip: Bool, outHeight: Int, outWidth: Int, dst: UnsafeMutablePointer<Float>) {
    precondition(box.top >= 0 && box.left >= 0 && box.height > 0 && box.width > 0
                 && box.top + box.height <= height && box.left + box.width <= width, "resizedCrop: bad box \(box)")
    // Per output column: the two source columns and the weight of the second.
    let xi0 = UnsafeMutablePointer<Int>.allocate(capacity: 2 * outWidth)
    let xw = UnsafeMutablePointer<Float>.allocate(capacity: outWidth)
    defer { xi0.deallocate(); xw.deallocate() }
    let xi1 = xi0 + outWidth
    let sx = Float(box.width) / Float(outWidth)
    for x in 0..<outWidth {
        let s = max(0, (Float(x) + 0.5) * sx - 0.5)
        let i0 = min(Int(s), box.width - 1)
        let o = flip ? outWidth - 1 - x : x
        xi0[o] = box.left + i0
        xi1[o] = box.left + min(i0 + 1, box.width - 1)
        xw[o] = s - Float(i0)
    }
    let sy = Float(box.height) / Float(outHeight)
    let inv255: Float = 1.0 / 255.0
    for c in 0..<channels {
        let plane = src + c * height * width
        let out = dst + c * outHeight * outWidth
        for y in 0..<outHeight {
            let s = max(0, (Float(y) + 0.5) * sy - 0.5)
            let j0 = min(Int(s), box.height - 1)
            let j1 = min(j0 + 1, box.height - 1)
            let fy = s - Float(j0)
            let r0 = plane + (box.top + j0) * width
            let r1 = plane + (box.top + j1) * width
            let row = out + y * outWidth
            for x in 0..<outWidth {
                let a = xi0[x], b = xi1[x], fx = xw[x]
                let top = Float(r0[a]) * (1 - fx) + Float(r0[b]) * fx
                let bottom = Float(r1[a]) * (1 - fx) + Float(r1[b]) * fx
                row[x] = (top * (1 - fy) + bottom * fy) * inv255
            }
        }
    }
}
