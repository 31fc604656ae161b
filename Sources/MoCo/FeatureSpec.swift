import MoCoLayers

/// The features the kNN monitor, `moco knn` and `moco lincls` read: one `FeatureLayer`, or
/// several read side by side.
///
/// Several layers of one network describe an image better together than any one of them
/// ("hypercolumns", Hariharan et al. 2015, "Hypercolumns for Object Segmentation and
/// Fine-grained Localization"): early stages keep where the strokes and edges are, the last one
/// what the whole looks like. For the kNN each part's rows are L2-normalised, scaled by the
/// part's weight and concatenated, and the result is normalised again, so that a sample's
/// cosine similarity is the weighted mean of its parts' similarities,
///     s(a, b) = Σ_p w_p² · cos_p(a, b) / Σ_p w_p²,
/// whatever the parts' widths (a 1568-d grid does not drown a 64-d vector by its size alone).
/// The linear probe standardises every column, so it reads the parts' raw rows side by side and
/// the weights do not enter.
///
/// Written as parts joined by `+`, each a `FeatureLayer` name with an optional positive weight
/// after `@` (default 1): `stage2-grid7+backbone@0.5`. One part without a weight is that layer
/// alone, read exactly as before combinations existed (so `config.json` files keep their meaning).
public struct FeatureSpec: Hashable, Sendable, CustomStringConvertible, LosslessStringConvertible, Codable {
    public struct Part: Hashable, Sendable {
        public let layer: FeatureLayer
        /// w_p in the formula above (1 for a single part).
        public let weight: Float
    }
    public let parts: [Part]

    public init(_ layer: FeatureLayer) { parts = [Part(layer: layer, weight: 1)] }

    public static let backbone = FeatureSpec(.backbone)
    public static let hidden = FeatureSpec(.hidden)
    public static let projection = FeatureSpec(.projection)

    public var description: String {
        parts.map { p in
            guard p.weight != 1 else { return "\(p.layer)" }
            // Whole weights without Swift's ".0": "grid4@2", as written.
            let w = p.weight == p.weight.rounded() && p.weight < 1e6 ? "\(Int(p.weight))" : "\(p.weight)"
            return "\(p.layer)@\(w)"
        }.joined(separator: "+")
    }

    /// The string form (see the type's comment); nil for anything else, also for a layer named
    /// twice or a weight on a layer read alone (it would have no effect).
    public init?(_ text: String) {
        var parts: [Part] = []
        for piece in text.split(separator: "+", omittingEmptySubsequences: false) {
            let fields = piece.split(separator: "@", omittingEmptySubsequences: false)
            guard fields.count <= 2, let layer = FeatureLayer(String(fields[0])) else { return nil }
            var weight: Float = 1
            if fields.count == 2 {
                guard let w = Float(fields[1]), w.isFinite, w > 0, fields[1].allSatisfy({ $0.isASCII }) else { return nil }
                weight = w
            }
            guard !parts.contains(where: { $0.layer == layer }) else { return nil }
            parts.append(Part(layer: layer, weight: weight))
        }
        guard !(parts.count == 1 && parts[0].weight != 1) else { return nil }
        self.parts = parts
    }

    public init(from decoder: Swift.Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let spec = FeatureSpec(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                debugDescription: "feature layer \"\(text)\": expected backbone, hidden, projection, gridG, stageS or stageS-gridG (e.g. grid4, stage2-grid4), or several joined by + with optional weights (stage2-grid7+backbone@0.5)"))
        }
        self = spec
    }

    public func encode(to encoder: Swift.Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// The width of the concatenated rows in an encoder of `architecture`, or a message saying
    /// why a part has none.
    public func width(architecture: Architecture, head: HeadKind, dim: Int) throws -> Int {
        try parts.reduce(0) { $0 + (try $1.layer.width(architecture: architecture, head: head, dim: dim)) }
    }

    /// Whether a part needs the head's weights.
    public var needsHead: Bool { parts.contains { $0.layer.needsHead } }
}
