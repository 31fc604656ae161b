import MoCoLayers

/// Which activation of an encoder the kNN monitor, `moco knn` and `moco lincls` read.
///
/// MoCo's linear protocol reads the pooled backbone (He et al. 2020, sec. 4.1; Chen et al.
/// 2020 for v2), as does this project by default; the MoCo CIFAR-10 demo's kNN monitor reads
/// the head's output instead. Which one represents the classes best after a given recipe is a
/// measured question (SimCLR, Chen et al. 2020, sec. 4.2 and Fig. 8: the layer before the
/// projection is better for linear evaluation on ImageNet).
public enum FeatureLayer: String, CaseIterable, Codable, Sendable {
    /// Global-average-pooled backbone features [N, d] (64-d for ResNet-20).
    case backbone
    /// The `mlp` head's hidden layer ReLU(fc.0(features)) [N, d].
    case hidden
    /// The head's output [N, dim] (before L2 normalisation), as the contrastive loss sees it.
    case projection
    /// The backbone's last map average-pooled to a 2×2 grid [N, 4d] (`GridAvgPool`): the pooled
    /// backbone with coarse spatial layout kept (256-d for ResNet-20).
    case grid2
    /// The same on a 3×3 grid [N, 9d] (576-d for ResNet-20).
    case grid3
    /// The same on a 4×4 grid [N, 16d] (1024-d for ResNet-20).
    case grid4

    /// The grid side of a grid layer (nil for the others).
    public var grid: Int? {
        switch self {
        case .grid2: 2
        case .grid3: 3
        case .grid4: 4
        default: nil
        }
    }

    /// The width of this layer in `encoder`, or a message saying why it has none.
    public func width(head: HeadKind, featureDim d: Int, dim: Int) throws -> Int {
        switch self {
        case .backbone: return d
        case .grid2, .grid3, .grid4: return d * grid! * grid!
        case .projection: return dim
        case .hidden:
            guard head == .mlp else {
                throw ConfigError("--knn-features/--features hidden reads the mlp head's hidden layer; the \(head.rawValue) head has none")
            }
            return d
        }
    }

    /// Whether the layer needs the head's weights.
    public var needsHead: Bool { self == .hidden || self == .projection }
}
