import MoCoTensor
import MoCoLayers
import MoCoData

/// Features of un-augmented images with an encoder in evaluation mode (BatchNorm on running
/// statistics), L2-normalised — the representation kNN and linear evaluation use: the pooled
/// backbone by default, or other layers (`FeatureSpec`: one `FeatureLayer`, or several side by
/// side). A separate evaluation encoder keeps the training buffers untouched.
public final class FeatureExtractor {
    public let encoder: Encoder
    public let batch: Int
    public let spec: FeatureSpec
    /// Width of the rows: the parts' widths added.
    public let featureDim: Int

    /// Where one part of `spec` comes from and where its columns go.
    private struct Part {
        let layer: FeatureLayer
        let weight: Float
        let width: Int
        /// First column of the part in a row.
        let offset: Int
        /// The block whose output a pooled layer other than `backbone` reads, with its
        /// channels and the part's grid-pooled rows of one batch [batch, width].
        let block: Int?
        let blockWidth: Int
        let rows: FloatBuffer
    }
    private let parts: [Part]
    private let images: FloatBuffer

    /// - Parameter hidden: the `mlp-bn` head's hidden width (`MoCoConfig.mlpDim`).
    public init(architecture: Architecture, head: HeadKind, inChannels: Int, dim: Int, height: Int, width: Int, batch: Int = 256,
                engine: EngineConfig = EngineConfig(), hidden: Int? = nil, features spec: FeatureSpec) throws {
        encoder = Encoder(architecture: architecture, head: head, inChannels: inChannels, dim: dim, trainable: false,
                          engine: engine, hidden: hidden)
        encoder.plan(batch: batch, height: height, width: width, backward: false)
        self.batch = batch
        self.spec = spec
        images = FloatBuffer(count: batch * inChannels * height * width)
        var parts: [Part] = [], offset = 0
        for p in spec.parts {
            let layer = p.layer
            let w = try layer.width(architecture: architecture, head: head, dim: dim)
            var block: Int?, blockWidth = 0
            if layer.kind == .pooled && layer != .backbone {
                let stage = try layer.stageIndex(stages: architecture.stages.count)
                let b = encoder.lastBlock(ofStage: stage)
                let (h, mw) = encoder.blockMapSizes[b]
                if let g = layer.grid, g > h || g > mw {
                    let which = layer.stage == nil ? "last map" : "stage \(stage + 1)'s map"
                    throw ConfigError("--features \(layer) pools a \(g)x\(g) grid; \(architecture.rawValue)'s \(which) is \(h)x\(mw) at \(height)x\(width) pixels")
                }
                block = b; blockWidth = architecture.stages[stage].width
            }
            parts.append(Part(layer: layer, weight: p.weight, width: w, offset: offset, block: block, blockWidth: blockWidth,
                              rows: FloatBuffer(count: block == nil ? 0 : batch * w)))
            offset += w
        }
        self.parts = parts
        featureDim = offset
    }

    /// One layer alone (`FeatureSpec(layer)`).
    public convenience init(architecture: Architecture, head: HeadKind, inChannels: Int, dim: Int, height: Int, width: Int,
                            batch: Int = 256, engine: EngineConfig = EngineConfig(), hidden: Int? = nil,
                            layer: FeatureLayer = .backbone) throws {
        try self.init(architecture: architecture, head: head, inChannels: inChannels, dim: dim, height: height, width: width,
                      batch: batch, engine: engine, hidden: hidden, features: FeatureSpec(layer))
    }

    /// features: [indices.count, d], row i for dataset image indices[i]; L2-normalised if asked
    /// (a combination: each part normalised and weighted, then the row; `FeatureSpec`).
    public func features(_ ds: Dataset, indices: [Int], normalize: Bool = true) -> FloatBuffer {
        let d = featureDim, size = ds.imageSize
        let out = FloatBuffer(count: indices.count * d)
        let withHead = parts.contains { $0.layer.needsHead }
        // Without the head or the pooled backbone, only the blocks up to the last one read.
        let through = parts.contains { $0.block == nil } ? nil : parts.compactMap(\.block).max()
        var start = 0
        while start < indices.count {
            let nb = min(batch, indices.count - start)
            for j in 0..<nb { normalizedImage(ds, index: indices[start + j], out: images.ptr + j * size) }
            // A partial last batch runs with stale images behind it: eval-mode BN is per sample.
            // Each grid is pooled right after its block (a later block may reuse that map's
            // buffer); rows past nb are stale and not copied.
            encoder.forward(images.ptr, training: false, withHead: withHead, throughBlock: through) { i in
                for p in self.parts where p.block == i {
                    let (h, w) = self.encoder.blockMapSizes[i]
                    GridAvgPool.forward(self.encoder.blocks[i].y.ptr, channels: p.blockWidth, batch: self.batch, height: h,
                                        width: w, grid: p.layer.grid ?? 1, p.rows.ptr)
                }
            }
            for p in parts {
                let source: UnsafeMutablePointer<Float>
                switch p.layer.kind {
                case .pooled where p.block == nil: source = encoder.features
                case .pooled: source = p.rows.ptr
                case .hidden: source = encoder.headHidden!
                case .projection: source = encoder.projection
                }
                if parts.count == 1 {
                    (out.ptr + start * d).update(from: source, count: nb * d)
                } else {
                    for j in 0..<nb { (out.ptr + (start + j) * d + p.offset).update(from: source + j * p.width, count: p.width) }
                }
            }
            start += nb
        }
        if normalize && parts.count > 1 {
            // s(a, b) = Σ w_p² cos_p(a, b) / Σ w_p²: unit parts scaled by w_p, then the row normalised.
            for p in parts {
                l2NormalizeRows(out.ptr + p.offset, rows: indices.count, dim: p.width, stride: d, scale: p.weight)
            }
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

/// x: [N, D] -> each row scaled to length `scale` (default unit length; rows of zeros stay
/// zero). With `stride` > D the rows are D-wide slices of longer rows (one part of a
/// `FeatureSpec` row).
public func l2NormalizeRows(_ x: UnsafeMutablePointer<Float>, rows: Int, dim: Int, stride: Int? = nil, scale: Float = 1) {
    let stride = stride ?? dim
    for n in 0..<rows {
        let r = x + n * stride
        var s: Float = 0
        for i in 0..<dim { s += r[i] * r[i] }
        let inv = scale / max(s.squareRoot(), 1e-12)
        for i in 0..<dim { r[i] *= inv }
    }
}
