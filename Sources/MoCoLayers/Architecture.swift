/// The encoders swift-moco builds, with torchvision's state-dict names.
public enum Architecture: String, CaseIterable, Sendable, Codable {
    /// CIFAR ResNet-20 (He et al. 2016, sec. 4.2): 3x3 stem to 16 channels, three stages of
    /// three basic blocks with widths 16/32/64, stride 2 at the start of stages 2 and 3; 64-d.
    case resnet20
    /// ResNet-20 with every width doubled (32/64/128; 128-d): about 4x the FLOPs and
    /// parameters of `resnet20`, the widening of Zagoruyko & Komodakis 2016 ("Wide Residual
    /// Networks", k = 2) on ResNet-20's depth.
    case resnet20x2 = "resnet20-x2"
    /// ResNet-20 with every width quadrupled (64/128/256; 256-d; k = 4): about 16x `resnet20`.
    case resnet20x4 = "resnet20-x4"
    /// torchvision's ResNet-18 with the CIFAR stem (3x3 stride-1 conv1, no max-pool); 512-d.
    case resnet18

    /// (width, blocks, stride) of each stage `layer1...`.
    public var stages: [(width: Int, blocks: Int, stride: Int)] {
        switch self {
        case .resnet20: return [(16, 3, 1), (32, 3, 2), (64, 3, 2)]
        case .resnet20x2: return [(32, 3, 1), (64, 3, 2), (128, 3, 2)]
        case .resnet20x4: return [(64, 3, 1), (128, 3, 2), (256, 3, 2)]
        case .resnet18: return [(64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)]
        }
    }
    public var stemWidth: Int { stages[0].width }
    public var featureDim: Int { stages.last!.width }

    /// The architecture of a bare weights file from its stem's output channels and whether it
    /// has a fourth stage (`layer4.*`): nil when no architecture matches.
    public static func infer(stemWidth: Int, hasLayer4: Bool) -> Architecture? {
        allCases.first { $0.stemWidth == stemWidth && ($0.stages.count == 4) == hasLayer4 }
    }
}

/// Projection head after the pooled backbone features.
public enum HeadKind: String, CaseIterable, Sendable, Codable {
    /// `fc` = Linear(d, dim) (MoCo v1).
    case linear
    /// `fc.0` Linear(d, d), ReLU, `fc.2` Linear(d, dim) (MoCo v2, Chen et al. 2020).
    case mlp
    /// MoCo v3's projector (Chen, Xie, He 2021): `fc.0` Linear(d, hidden, no bias), `fc.1`
    /// BatchNorm1d, ReLU, `fc.3` Linear(hidden, dim, no bias), `fc.4` BatchNorm1d without affine
    /// (`BNMLP`).
    case mlpBN = "mlp-bn"
}
