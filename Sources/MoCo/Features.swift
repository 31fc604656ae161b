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
    /// Grid-pooled rows of one batch [batch, featureDim] (pooled layers other than `backbone`).
    private let gridRows: FloatBuffer
    /// The block whose output a pooled layer reads (the last block for the last stage).
    private let block: Int
    /// Channels of that block's output.
    private let blockWidth: Int

    /// - Parameter hidden: the `mlp-bn` head's hidden width (`MoCoConfig.mlpDim`).
    public init(architecture: Architecture, head: HeadKind, inChannels: Int, dim: Int, height: Int, width: Int, batch: Int = 256,
                engine: EngineConfig = EngineConfig(), hidden: Int? = nil, layer: FeatureLayer = .backbone) throws {
        featureDim = try layer.width(architecture: architecture, head: head, dim: dim)
        encoder = Encoder(architecture: architecture, head: head, inChannels: inChannels, dim: dim, trainable: false,
                          engine: engine, hidden: hidden)
        encoder.plan(batch: batch, height: height, width: width, backward: false)
        self.batch = batch
        self.layer = layer
        images = FloatBuffer(count: batch * inChannels * height * width)
        let usesGrid = layer.kind == .pooled && layer != .backbone
        gridRows = FloatBuffer(count: usesGrid ? batch * featureDim : 0)
        let stage = layer.kind == .pooled ? try layer.stageIndex(stages: architecture.stages.count) : architecture.stages.count - 1
        block = encoder.lastBlock(ofStage: stage)
        blockWidth = architecture.stages[stage].width
        let (h, w) = encoder.blockMapSizes[block]
        if let g = layer.grid, g > h || g > w {
            let which = layer.stage == nil ? "last map" : "stage \(stage + 1)'s map"
            throw ConfigError("--features \(layer) pools a \(g)x\(g) grid; \(architecture.rawValue)'s \(which) is \(h)x\(w) at \(height)x\(width) pixels")
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
            let source: UnsafeMutablePointer<Float>
            switch layer.kind {
            case .pooled where layer == .backbone:
                encoder.forward(images.ptr, training: false, withHead: false)
                source = encoder.features
            case .pooled:
                // Only the blocks up to the one read; its map is planned for `batch` samples,
                // and rows past nb are stale and not copied.
                encoder.forward(images.ptr, training: false, withHead: false, throughBlock: block)
                let (h, w) = encoder.blockMapSizes[block]
                GridAvgPool.forward(encoder.blocks[block].y.ptr, channels: blockWidth, batch: batch, height: h, width: w,
                                    grid: layer.grid ?? 1, gridRows.ptr)
                source = gridRows.ptr
            case .hidden:
                encoder.forward(images.ptr, training: false, withHead: true)
                source = encoder.headHidden!
            case .projection:
                encoder.forward(images.ptr, training: false, withHead: true)
                source = encoder.projection
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
