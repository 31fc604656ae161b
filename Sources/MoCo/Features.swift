import MoCoTensor
import MoCoLayers
import MoCoData

/// Features of un-augmented images with an encoder in evaluation mode (BatchNorm on running
/// statistics), L2-normalised — the representation kNN and linear evaluation use: the pooled
/// backbone by default, or another `FeatureLayer`. A separate evaluation encoder keeps the
/// training buffers untouched.
public final class FeatureExtractor {
    public let encoder: Encoder
    public let batch: Int
    public let layer: FeatureLayer
    /// Width of `layer`.
    public let featureDim: Int
    private let images: FloatBuffer
    /// Grid-pooled rows of one batch [batch, featureDim] (grid layers only).
    private let gridRows: FloatBuffer

    /// - Parameter hidden: the `mlp-bn` head's hidden width (`MoCoConfig.mlpDim`).
    public init(architecture: Architecture, head: HeadKind, inChannels: Int, dim: Int, height: Int, width: Int, batch: Int = 256,
                engine: EngineConfig = EngineConfig(), hidden: Int? = nil, layer: FeatureLayer = .backbone) throws {
        featureDim = try layer.width(head: head, featureDim: architecture.featureDim, dim: dim)
        encoder = Encoder(architecture: architecture, head: head, inChannels: inChannels, dim: dim, trainable: false,
                          engine: engine, hidden: hidden)
        encoder.plan(batch: batch, height: height, width: width, backward: false)
        self.batch = batch
        self.layer = layer
        images = FloatBuffer(count: batch * inChannels * height * width)
        gridRows = FloatBuffer(count: layer.grid == nil ? 0 : batch * featureDim)
        if let g = layer.grid, g > encoder.lastMapSize.h || g > encoder.lastMapSize.w {
            throw ConfigError("--features \(layer.rawValue) pools a \(g)x\(g) grid; \(architecture.rawValue)'s last map is \(encoder.lastMapSize.h)x\(encoder.lastMapSize.w) at \(height)x\(width) pixels")
        }
    }

    /// features: [indices.count, d], row i for dataset image indices[i]; L2-normalised if asked.
    public func features(_ ds: Dataset, indices: [Int], normalize: Bool = true) -> FloatBuffer {
        let d = featureDim, size = ds.imageSize
        let out = FloatBuffer(count: indices.count * d)
        var start = 0
        while start < indices.count {
            let nb = min(batch, indices.count - start)
            for j in 0..<nb { normalizedImage(ds, index: indices[start + j], out: images.ptr + j * size) }
            // A partial last batch runs with stale images behind it: eval-mode BN is per sample.
            encoder.forward(images.ptr, training: false, withHead: layer.needsHead)
            let source: UnsafeMutablePointer<Float>
            switch layer {
            case .backbone: source = encoder.features
            case .hidden: source = encoder.headHidden!
            case .projection: source = encoder.projection
            case .grid2, .grid3, .grid4:
                // The map is planned for `batch` samples; rows past nb are stale and not copied.
                let (h, w) = encoder.lastMapSize
                GridAvgPool.forward(encoder.lastMap, channels: encoder.featureDim, batch: batch, height: h, width: w,
                                    grid: layer.grid!, gridRows.ptr)
                source = gridRows.ptr
            }
            (out.ptr + start * d).update(from: source, count: nb * d)
            start += nb
        }
        if normalize { l2NormalizeRows(out.ptr, rows: indices.count, dim: d) }
        return out
    }
}

/// Flattened normalised pixels as features (the raw-pixel baseline), L2-normalised.
/// -> [indices.count, C*H*W]
public func pixelFeatures(_ ds: Dataset, indices: [Int]) -> FloatBuffer {
    let size = ds.imageSize
    let out = FloatBuffer(count: indices.count * size)
    for (i, idx) in indices.enumerated() { normalizedImage(ds, index: idx, out: out.ptr + i * size) }
    l2NormalizeRows(out.ptr, rows: indices.count, dim: size)
    return out
}

/// x: [N, D] -> each row scaled to unit length (rows of zeros stay zero).
public func l2NormalizeRows(_ x: UnsafeMutablePointer<Float>, rows: Int, dim: Int) {
    for n in 0..<rows {
        let r = x + n * dim
        var s: Float = 0
        for i in 0..<dim { s += r[i] * r[i] }
        let inv = 1 / max(s.squareRoot(), 1e-12)
        for i in 0..<dim { r[i] *= inv }
    }
}
