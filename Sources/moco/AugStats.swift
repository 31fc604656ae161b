import ArgumentParser
import Foundation
import MoCo
import MoCoData
import MoCoComm

/// `moco augstats`: the training augmentation's random choices and output statistics, for
/// comparison with torchvision's transforms (`scripts/augment_stats.py`, docs/training.md
/// "Augmentation against torchvision").
///
/// View v of image i is drawn exactly as the training loader draws it in the given epoch
/// (`Xoshiro(seed, stream: [0x4155, epoch, i, v])`, `TwoCropLoader`), so the figures describe
/// the crops a run trains on. Views are images 0, 0, 1, 1, ... (two per image, as the loader).
struct AugStats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "augstats",
        abstract: "Record the augmentation's parameters and pixel statistics as JSON (compare with scripts/augment_stats.py).",
        discussion: """
            Per view: crop box (top, left, height, width in source pixels), ColorJitter order and factors, \
            blur sigma (0 = no blur), flip. Over all views: a 256-bin histogram of the un-normalised output \
            pixels (bin = round(255 x)), and each view's pixel mean and standard deviation. The first --dump \
            views are written pixel by pixel (un-normalised, 0...1) so that the script can apply torchvision's \
            functions with the same parameters to the same images.
            """)

    @Option(help: "A run's config.json (its data and augmentation); default: the preset's.") var config: String?
    @Option(help: "Preset when no --config is given.") var preset: TrainConfig.Preset = .mocoV2
    @Option(help: "Dataset (overrides the configuration's).") var data: DatasetKind?
    @Option(help: "Directory of the dataset files.") var dataDir: String?
    @Option(help: "Maximum blur sigma (overrides).") var blurSigmaMax: Float?
    @Option(help: "Blur support: auto, full or an odd size (overrides).") var blurKernel: BlurKernel?
    @Option(help: "Seed (overrides the configuration's).") var seed: UInt64?
    @Option(help: "Epoch whose crops are drawn (0-based).") var epoch: Int = 0
    @Option(help: "Number of views (two per image).") var views: Int = 20000
    @Option(help: "Views written pixel by pixel.") var dump: Int = 256
    @Option(help: "Output JSON file.") var out: String

    func validate() throws {
        guard views > 0 else { throw ValidationError("--views must be positive") }
        guard dump >= 0 else { throw ValidationError("--dump must be non-negative") }
        guard epoch >= 0 else { throw ValidationError("--epoch must be non-negative") }
    }

    func run() throws {
        var c: TrainConfig
        if let config {
            guard let text = try? String(contentsOfFile: config, encoding: .utf8) else {
                throw ValidationError("cannot read --config \(config)")
            }
            c = try TrainConfig.from(json: text)
        } else {
            c = TrainConfig.preset(preset)
        }
        if let data { c.data = data }
        if let dataDir { c.dataDir = dataDir }
        if let blurSigmaMax { c.augment.blurSigmaMax = blurSigmaMax }
        if let blurKernel { c.augment.blurKernel = blurKernel }
        if let seed { c.seed = seed }
        let ds = try Trainer.loadData(c, comm: SingleProcessCommunicator()).train
        let images = (views + 1) / 2
        guard images <= ds.count else {
            throw ValidationError("--views \(views) needs \(images) images; the training set has \(ds.count)")
        }
        let r = AugmentRecorder.record(ds, config: c.augment, seed: c.seed, epoch: epoch, views: views, dump: dump)
        var obj = r.json
        obj["tool"] = "swift-moco"
        obj["data"] = c.data.rawValue
        obj["seed"] = Int(c.seed)
        obj["epoch"] = epoch
        obj["image_mean"] = ds.mean.map(Double.init)
        obj["image_std"] = ds.std.map(Double.init)
        obj["channels"] = ds.channels
        obj["image_height"] = ds.height
        obj["image_width"] = ds.width
        let augment = try JSONSerialization.jsonObject(with: JSONEncoder().encode(c.augment))
        obj["augment"] = augment
        let bytes = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
        try bytes.write(to: URL(fileURLWithPath: out), options: .atomic)
        print("\(views) views of \(images) images (epoch \(epoch), seed \(c.seed)) -> \(out)")
    }
}
