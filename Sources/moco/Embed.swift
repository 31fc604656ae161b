import ArgumentParser
import Foundation
import MoCo
import MoCoLayers
import MoCoTensor
import SafeTensors

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an encoder in eval mode on `images` [N, C, H, W] and write `features` and `projection`.")

    @Option(help: "Encoder (default: from the checkpoint, or inferred from the weights).") var arch: Architecture?
    @Option(help: "Weights: a bare encoder (torchvision names) or a MoCo checkpoint.") var weights: String
    @Option(help: "Projection head (default: inferred from the weights).") var head: HeadKind?
    @Option(help: "safetensors file holding `images` [N, C, H, W] (F32).") var input: String
    @Option(help: "Output safetensors file (features [N, d], projection [N, dim]).") var output: String
    @Option(help: "Images per forward pass.") var batch = 256
    @Option(help: "Engine threads.") var threads: Int?
    @Option(help: "Also write `gridG` [N, d·G·G]: the last map average-pooled to a GxG grid (as --features gridG; repeatable).") var grid: [Int] = []

    func run() throws {
        Runtime.run { _ in
            let engine = try Runtime.engine(threads: threads, conv: nil)
            let loaded = try WeightsFile.load(weights, architecture: arch, head: head, engine: engine)
            let e = loaded.encoder
            let x = try SafeTensorsFile(path: input)
            guard x.has("images") else { throw ValidationError("\(input): no tensor 'images'") }
            let shape = try x.shape("images")
            guard shape.count == 4, shape[1] == e.inChannels, shape[0] > 0 else {
                throw ValidationError("\(input): 'images' has shape \(shape), expected [N, \(e.inChannels), H, W]")
            }
            let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
            guard h >= 4 && w >= 4 else { throw ValidationError("\(input): images of \(h)x\(w) are too small") }
            let images = FloatBuffer(try x.floats("images"))
            let d = e.featureDim
            let features = FloatBuffer(count: n * d), projection = FloatBuffer(count: n * e.dim)
            let nb = max(1, min(batch, n))
            e.plan(batch: nb, height: h, width: w, backward: false)
            let (mh, mw) = e.lastMapSize
            for g in grid where g < 1 || g > mh || g > mw {
                throw ValidationError("--grid \(g): the last map of \(e.architecture.rawValue) is \(mh)x\(mw) at \(h)x\(w) pixels")
            }
            let grids = grid.map { FloatBuffer(count: n * d * $0 * $0) }
            let gridRows = FloatBuffer(count: nb * d * (grid.max() ?? 0) * (grid.max() ?? 0))
            let chunk = FloatBuffer(count: nb * c * h * w)
            var start = 0
            while start < n {
                let m = min(nb, n - start)
                chunk.ptr.update(from: images.ptr + start * c * h * w, count: m * c * h * w)
                e.forward(chunk.ptr, training: false)
                (features.ptr + start * d).update(from: e.features, count: m * d)
                (projection.ptr + start * e.dim).update(from: e.projection, count: m * e.dim)
                for (g, out) in zip(grid, grids) {
                    GridAvgPool.forward(e.lastMap, channels: d, batch: nb, height: mh, width: mw, grid: g, gridRows.ptr)
                    (out.ptr + start * d * g * g).update(from: gridRows.ptr, count: m * d * g * g)
                }
                start += m
            }
            var out = SafeTensorsWriter()
            out.add("features", shape: [n, d], floats: features.array)
            out.add("projection", shape: [n, e.dim], floats: projection.array)
            for (g, t) in zip(grid, grids) { out.add("grid\(g)", shape: [n, d * g * g], floats: t.array) }
            out.metadata = ["arch": e.architecture.rawValue, "head": e.head.rawValue, "weights": weights, "mode": "eval"]
            try out.write(to: output)
            emit("wrote \(output): features [\(n), \(d)], projection [\(n), \(e.dim)] (\(e.architecture.rawValue), \(e.head.rawValue) head, eval mode)")
        }
    }
}

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a freshly initialised encoder (seeded; --init chooses the convolutions' scheme).")

    @Option(help: "Encoder.") var arch: Architecture = .resnet20
    @Option(help: "Projection head.") var head: HeadKind = .mlp
    @Option(help: "Initial convolution weights (as moco train --init).") var `init`: InitScheme = .default
    @Option(help: "Input channels (1 for Fashion-MNIST, 3 for CIFAR).") var inChannels = 1
    @Option(help: "Projection dimension.") var dim = 128
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Output safetensors file.") var output: String

    func run() throws {
        Runtime.run { _ in
            guard inChannels > 0, dim > 0 else { throw ValidationError("--in-channels and --dim must be positive") }
            let e = Encoder(architecture: arch, head: head, inChannels: inChannels, dim: dim, trainable: false)
            e.initialize(seed: seed, scheme: `init`)
            var w = SafeTensorsWriter()
            EncoderState.add(e, to: &w)
            w.metadata = ["arch": arch.rawValue, "head": head.rawValue, "init": `init`.rawValue, "in_channels": String(inChannels), "seed": String(seed)]
            try w.write(to: output)
            emit("wrote \(output): \(arch.rawValue) + \(head.rawValue) head, \(inChannels) input channel(s), \(e.params.entries.reduce(0) { $0 + $1.count }) parameters")
        }
    }
}
