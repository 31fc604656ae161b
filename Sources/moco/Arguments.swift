import ArgumentParser
import MoCo
import MoCoData
import MoCoLayers
import MoCoOptim

// The library's choices as swift-argument-parser values: each flag lists its values in
// `--help`, and a misspelt value is rejected with the list.
extension Architecture: ExpressibleByArgument {}
/// An open family (`gridG`, `stageS-gridG`, layers joined by `+` with optional `@W` weights), so
/// no closed list of values: the options' help gives the forms, and a value outside them is
/// refused by name.
extension FeatureSpec: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
    public var defaultValueDescription: String { description }
}
extension HeadKind: ExpressibleByArgument {}
extension ConvAlgorithm: ExpressibleByArgument {}
extension WeightGradAlgorithm: ExpressibleByArgument {}
extension StridedConvAlgorithm: ExpressibleByArgument {}
extension InitScheme: ExpressibleByArgument {}
extension DatasetKind: ExpressibleByArgument {}
extension TrainConfig.Preset: ExpressibleByArgument {}
extension Mechanism: ExpressibleByArgument {}
extension ContrastLoss: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension BlurKernel: ExpressibleByArgument {
    public static var allValueStrings: [String] { ["auto", "full", "K (odd)"] }
}

extension LRSchedule: ExpressibleByArgument {
    /// `cosine`, or `step:E1,E2,...` (x0.1 at each milestone epoch).
    public init?(argument: String) {
        if argument == "cosine" { self = .cosine; return }
        guard argument.hasPrefix("step:") else { return nil }
        let ms = argument.dropFirst(5).split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
        guard !ms.isEmpty, ms.allSatisfy({ $0 != nil && $0! >= 0 }) else { return nil }
        self = .step(milestones: ms.map { $0! })
    }

    public static var allValueStrings: [String] { ["cosine", "step:E1,E2"] }

    public var defaultValueDescription: String {
        switch self {
        case .cosine: "cosine"
        case .step(let ms): "step:" + ms.map(String.init).joined(separator: ",")
        }
    }
}
