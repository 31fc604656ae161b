import MoCoTensor

/// A procedural dataset that needs no files: each class is a shape family drawn at a random
/// position, scale, rotation, stroke width and contrast, over a random background with
/// Gaussian noise and, half the time, a distracting stroke. Shapes (in class order): two
/// horizontal bars, two vertical bars, ring, plus-cross, X-cross, filled disk, square outline,
/// filled triangle, 3x3 dot grid, L-corner.
///
/// The class is never given away by position, size, brightness or colour, so a model must
/// learn shape; with rotations of up to 25 degrees the bar classes, and the two crosses, stay
/// distinct. Sample `i` has label `i % numClasses` (exactly balanced up to one image per class)
/// and is drawn from `Xoshiro(seed: seed, stream: [0x5359, split, i])`, so the dataset is a
/// pure function of its arguments.
extension Dataset {
    public static let syntheticDefaultSeed: UInt64 = 0x5EED_DA7A
    public static let syntheticShapeCount = 10

    public static func synthetic(split: Split = .train, count: Int? = nil, channels: Int = 1, height: Int = 28,
                                 width: Int = 28, numClasses: Int = 10, seed: UInt64 = syntheticDefaultSeed) -> Dataset {
        precondition(channels == 1 || channels == 3, "synthetic: channels must be 1 or 3")
        precondition(numClasses >= 2 && numClasses <= syntheticShapeCount, "synthetic: 2...\(syntheticShapeCount) classes")
        precondition(height >= 8 && width >= 8, "synthetic: images of at least 8x8")
        let n = count ?? (split == .train ? 6000 : 1000)
        let image = channels * height * width
        var pixels = [UInt8](repeating: 0, count: n * image)
        var labels = [Int32](repeating: 0, count: n)
        let plane = UnsafeMutablePointer<Float>.allocate(capacity: height * width)
        defer { plane.deallocate() }
        pixels.withUnsafeMutableBufferPointer { px in
            for i in 0..<n {
                let label = i % numClasses
                labels[i] = Int32(label)
                var rng = Xoshiro(seed: seed, stream: [0x5359, split == .train ? 0 : 1, UInt64(i)])
                drawSyntheticImage(shape: label, channels: channels, height: height, width: width,
                                   rng: &rng, plane: plane, out: px.baseAddress! + i * image)
            }
        }
        let stats = channelStatistics(pixels: pixels, channels: channels, planeSize: height * width)
        return Dataset(name: "synthetic-\(split.rawValue)", channels: channels, height: height, width: width,
                       pixels: pixels, labels: labels, numClasses: numClasses, mean: stats.mean, std: stats.std)
    }
}

/// Distance from p to the segment a-b.
@inline(__always)
private func segment(_ px: Float, _ py: Float, _ ax: Float, _ ay: Float, _ bx: Float, _ by: Float) -> Float {
    let dx = bx - ax, dy = by - ay
    let t = max(0, min(1, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    let ex = px - ax - t * dx, ey = py - ay - t * dy
    return (ex * ex + ey * ey).squareRoot()
}

/// Signed distance (negative inside) of shape `shape` at local coordinates (u, v) in units of
/// the shape radius; `t` is the half stroke width.
@inline(__always)
private func shapeDistance(_ shape: Int, _ u: Float, _ v: Float, _ t: Float) -> Float {
    switch shape {
    case 0: return min(segment(u, v, -0.9, -0.5, 0.9, -0.5), segment(u, v, -0.9, 0.5, 0.9, 0.5)) - t
    case 1: return min(segment(u, v, -0.5, -0.9, -0.5, 0.9), segment(u, v, 0.5, -0.9, 0.5, 0.9)) - t
    case 2: return abs((u * u + v * v).squareRoot() - 0.7) - t
    case 3: return min(segment(u, v, -0.9, 0, 0.9, 0), segment(u, v, 0, -0.9, 0, 0.9)) - t
    case 4: return min(segment(u, v, -0.7, -0.7, 0.7, 0.7), segment(u, v, -0.7, 0.7, 0.7, -0.7)) - t
    case 5: return (u * u + v * v).squareRoot() - 0.6
    case 6: return abs(max(abs(u), abs(v)) - 0.7) - t
    case 7:
        // Triangle with vertices (0, -0.8), (0.8, 0.6), (-0.8, 0.6): max of the edge half-planes.
        let k: Float = 1 / (1.4 * 1.4 + 0.8 * 0.8).squareRoot()
        let e1 = (1.4 * u + 0.8 * v - 0.64) * k
        let e2 = (-1.4 * u + 0.8 * v - 0.64) * k
        let e3 = v - 0.6
        return max(e1, max(e2, e3))
    case 8:
        var d = Float.greatestFiniteMagnitude
        for gy in -1...1 {
            for gx in -1...1 {
                let dx = u - 0.65 * Float(gx), dy = v - 0.65 * Float(gy)
                d = min(d, (dx * dx + dy * dy).squareRoot())
            }
        }
        return d - (t + 0.06)
    default: return min(segment(u, v, -0.6, -0.8, -0.6, 0.7), segment(u, v, -0.6, 0.7, 0.7, 0.7)) - t
    }
}

/// Draws one image. plane: [H, W] scratch coverage; out: [C, H, W] bytes.
private func drawSyntheticImage(shape: Int, channels: Int, height: Int, width: Int, rng: inout Xoshiro,
                                plane: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<UInt8>) {
    let side = Float(min(height, width))
    let radius = side * rng.uniform(0.22, 0.42)              // pixels per local unit
    let cx = rng.uniform(radius * 0.8, Float(width) - radius * 0.8)
    let cy = rng.uniform(radius * 0.8, Float(height) - radius * 0.8)
    let angle = rng.uniform(-0.44, 0.44)                      // about +-25 degrees
    let half = rng.uniform(0.09, 0.2)                         // half stroke width, local units
    let cosA = cos(angle), sinA = sin(angle)
    let hw = height * width
    // Shape coverage with a one-pixel anti-aliased edge.
    for y in 0..<height {
        for x in 0..<width {
            let dx = (Float(x) + 0.5 - cx) / radius, dy = (Float(y) + 0.5 - cy) / radius
            let u = cosA * dx + sinA * dy, v = -sinA * dx + cosA * dy
            let d = shapeDistance(shape, u, v, half) * radius
            plane[y * width + x] = max(0, min(1, 0.5 - d))
        }
    }
    // A distracting stroke, half the time.
    if rng.uniform() < 0.5 {
        let ax = rng.uniform(0, Float(width)), ay = rng.uniform(0, Float(height))
        let len = side * rng.uniform(0.15, 0.35), phi = rng.uniform(0, 2 * Float.pi)
        let bx = ax + len * cos(phi), by = ay + len * sin(phi)
        let strength = rng.uniform(0.3, 0.8)
        for y in 0..<height {
            for x in 0..<width {
                let d = segment(Float(x) + 0.5, Float(y) + 0.5, ax, ay, bx, by) - 0.6
                let c = max(0, min(1, 0.5 - d)) * strength
                plane[y * width + x] = max(plane[y * width + x], c)
            }
        }
    }
    // Colours: background and foreground per channel (equal channels for grey).
    var bg = [Float](repeating: 0, count: channels), fg = [Float](repeating: 0, count: channels)
    let bgLevel = rng.uniform(0, 0.3), contrast = rng.uniform(0.35, 0.7)
    for c in 0..<channels {
        bg[c] = channels == 1 ? bgLevel : rng.uniform(0, 0.35)
        fg[c] = channels == 1 ? bgLevel + contrast : rng.uniform(0.45, 1)
    }
    let noise = rng.uniform(0.03, 0.1)
    for c in 0..<channels {
        let b = bg[c], f = fg[c]
        let dst = out + c * hw
        for k in 0..<hw {
            let a = plane[k]
            let v = b + (f - b) * a + noise * rng.normal()
            dst[k] = UInt8(max(0, min(255, (v * 255).rounded())))
        }
    }
}

import Foundation
