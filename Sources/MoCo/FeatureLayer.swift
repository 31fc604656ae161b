import MoCoLayers

/// Which activation of an encoder the kNN monitor, `moco knn` and `moco lincls` read.
///
/// MoCo's linear protocol reads the pooled backbone (He et al. 2020, sec. 4.1; Chen et al.
/// 2020 for v2), as does this project by default; the MoCo CIFAR-10 demo's kNN monitor reads
/// the head's output instead. Which one represents the classes best after a given recipe is a
/// measured question (SimCLR, Chen et al. 2020, sec. 4.2 and Fig. 8: the layer before the
/// projection is better for linear evaluation on ImageNet; Zhang, Isola and Efros 2017 and
/// Goyal et al. 2019 probe every stage of a self-supervised network, pooled to a coarse grid).
///
/// Written as a string on the command line and in configuration files (there as a `FeatureSpec`,
/// which also reads several layers together):
/// - `backbone`: the global-average-pooled backbone [N, d] (64-d for ResNet-20);
/// - `hidden`: the `mlp` head's hidden layer ReLU(fc.0(features)) [N, d];
/// - `projection`: the head's output [N, dim] (before L2 normalisation), as the loss sees it;
/// - `gridG`: the backbone's last map average-pooled to a G×G grid [N, G²·d] (PyTorch's
///   `adaptive_avg_pool2d(map, G).flatten(1)`; `grid4` is 1024-d for ResNet-20);
/// - `stageS` and `stageS-gridG`: the output of stage S (1-based; the last block of the S-th
///   group of residual blocks) pooled to 1×1 or a G×G grid [N, G²·width(S)], e.g. `stage2-grid4`
///   is ResNet-20's 14×14 32-channel map on a 4×4 grid, 512-d. For the last stage L,
///   `stageL-gridG` reads what `gridG` reads and `stageL` what `backbone` reads.
public struct FeatureLayer: Hashable, Sendable, CustomStringConvertible, LosslessStringConvertible {
    public enum Kind: Hashable, Sendable { case pooled, hidden, projection }
    public let kind: Kind
    /// The stage read (1-based), nil for the last stage.
    public let stage: Int?
    /// The grid side (nil: pooled to 1×1).
    public let grid: Int?

    private init(kind: Kind, stage: Int?, grid: Int?) { self.kind = kind; self.stage = stage; self.grid = grid }

    public static let backbone = FeatureLayer(kind: .pooled, stage: nil, grid: nil)
    public static let hidden = FeatureLayer(kind: .hidden, stage: nil, grid: nil)
    public static let projection = FeatureLayer(kind: .projection, stage: nil, grid: nil)
    public static let grid2 = FeatureLayer.pooled(grid: 2)
    public static let grid3 = FeatureLayer.pooled(grid: 3)
    public static let grid4 = FeatureLayer.pooled(grid: 4)

    /// A map pooled to `grid`×`grid` (1 = global pooling), of `stage` (nil: the last stage).
    public static func pooled(stage: Int? = nil, grid: Int = 1) -> FeatureLayer {
        precondition(grid >= 1 && (stage ?? 1) >= 1, "FeatureLayer: grid \(grid), stage \(stage ?? 0)")
        return FeatureLayer(kind: .pooled, stage: stage, grid: grid == 1 ? nil : grid)
    }

    public var description: String {
        switch kind {
        case .hidden: return "hidden"
        case .projection: return "projection"
        case .pooled:
            switch (stage, grid) {
            case (nil, nil): return "backbone"
            case (nil, let g?): return "grid\(g)"
            case (let s?, nil): return "stage\(s)"
            case (let s?, let g?): return "stage\(s)-grid\(g)"
            }
        }
    }

    /// The string form (see the type's comment); nil for anything else.
    public init?(_ text: String) {
        switch text {
        case "backbone": self = .backbone; return
        case "hidden": self = .hidden; return
        case "projection": self = .projection; return
        default: break
        }
        /// A positive decimal without sign or leading zeros.
        func number(_ s: Substring) -> Int? {
            guard let first = s.first, first != "0", s.allSatisfy({ $0.isASCII && $0.isNumber }), s.count <= 4 else { return nil }
            return Int(s)
        }
        var rest = Substring(text)
        var stage: Int?
        if rest.hasPrefix("stage") {
            rest = rest.dropFirst(5)
            let digits = rest.prefix { $0 != "-" }
            guard let s = number(digits) else { return nil }
            stage = s
            rest = rest.dropFirst(digits.count)
            if rest.isEmpty { self = .pooled(stage: s); return }
            guard rest.hasPrefix("-") else { return nil }
            rest = rest.dropFirst()
        }
        guard rest.hasPrefix("grid"), let g = number(rest.dropFirst(4)), g >= 2 else { return nil }
        self = .pooled(stage: stage, grid: g)
    }

    /// The stage index (0-based) this layer reads in an architecture with `stages` stages, or a
    /// message saying why it has none.
    public func stageIndex(stages: Int) throws -> Int {
        guard let s = stage else { return stages - 1 }
        guard s <= stages else {
            throw ConfigError("--features/--knn-features \(self): the encoder has \(stages) stages (stage1 to stage\(stages))")
        }
        return s - 1
    }

    /// The width of this layer in an encoder of `architecture`, or a message saying why it has none.
    public func width(architecture: Architecture, head: HeadKind, dim: Int) throws -> Int {
        switch kind {
        case .projection: return dim
        case .hidden:
            guard head == .mlp else {
                throw ConfigError("--knn-features/--features hidden reads the mlp head's hidden layer; the \(head.rawValue) head has none")
            }
            return architecture.featureDim
        case .pooled:
            let s = try stageIndex(stages: architecture.stages.count)
            let g = grid ?? 1
            return architecture.stages[s].width * g * g
        }
    }

    /// Whether the layer needs the head's weights.
    public var needsHead: Bool { kind != .pooled }
}
