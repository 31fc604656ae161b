import ArgumentParser
import Foundation
import MoCo
import MoCoBench
import MoCoComm
import MoCoLayers
import MoCoTensor
import MoCoData

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks (use a release build): ops, step, comm, augment, soak.",
        subcommands: [Ops.self, Step.self, CommBenchCommand.self, Augment.self, Soak.self])

    /// The encoders `bench ops` measures.
    enum OpsArch: String, CaseIterable, ExpressibleByArgument {
        case resnet20, resnet18, all
        /// (architecture, input channels, side) of each measured encoder.
        var encoders: [(Architecture, Int, Int)] {
            switch self {
            case .resnet20: [(.resnet20, 1, 28)]
            case .resnet18: [(.resnet18, 3, 32)]
            case .all: [(.resnet20, 1, 28), (.resnet18, 3, 32)]
            }
        }
    }

    struct Ops: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Forward/backward time and GFLOP/s of every distinct conv shape of ResNet-20 and ResNet-18, beside sgemm.")
        @Option(help: "Batch size.") var batch = 64
        @Option(help: "Encoders to measure.") var arch: OpsArch = .all
        @Option(help: "Engine threads.") var threads: Int?
        @Option(help: "Timed repetitions per op (median).") var repeats = 5
        @Option(help: "3x3 stride-1 convolutions (default: MOCO_CONV, else winograd4).") var conv: ConvAlgorithm?
        @Option(name: .customLong("conv-dw"), help: "Weight gradient of the Winograd convolutions (default: MOCO_CONV_DW, else winograd).") var convDW: WeightGradAlgorithm?
        @Option(name: .customLong("conv-strided"), help: "Forward of the strided 3x3 convolutions: direct (AVX2 kernel, no im2col columns) or im2col (default: MOCO_CONV_STRIDED, else direct).") var convStrided: StridedConvAlgorithm?

        func run() throws {
            Runtime.run { comm in
                let engine = try Runtime.engine(threads: threads, conv: conv, weightGrad: convDW, strided: convStrided)
                let peak = SgemmPeak.large(threads: engine.threads)
                say(comm, String(format: "sgemm 2048^3: %.1f GFLOP/s with %d thread(s); batch %d; conv %@, dW %@, strided %@", peak,
                                 engine.threads, batch, engine.conv.rawValue, engine.weightGrad.rawValue, engine.strided.rawValue))
                say(comm, "arch      conv                      in   out k s  HxW      fwd ms   fwd GF/s  bwd ms   bwd GF/s  sgemm GF/s  fwd/sgemm")
                for (a, c, hw) in arch.encoders {
                    for r in OpsBench.run(architecture: a, inChannels: c, height: hw, width: hw, batch: batch, repeats: repeats,
                                          engine: engine) {
                        say(comm, String(format: "%-9@ %-25@ %4d %4d %d %d %3dx%-3d %8.2f %9.1f %8.2f %9.1f %10.1f %9.2f",
                                         r.arch, r.shape.name, r.shape.inChannels, r.shape.outChannels, r.shape.kernel, r.shape.stride,
                                         r.shape.height, r.shape.width, r.forwardMs, r.forwardGflops, r.backwardMs, r.backwardGflops,
                                         r.gemmGflops, r.forwardGflops / r.gemmGflops))
                    }
                }
            }
        }
    }

    struct Step: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The full training step of a mechanism on synthetic data (also under mpirun): images/s, GFLOP/s, phases, memory.")
        @Option(help: "moco, memory-bank, end-to-end or moco-v3 (the moco-v3 preset's step).") var mechanism: Mechanism?
        @Option(help: "Take the step's settings (head, loss, optimizer, mechanism, ...) from a training preset.") var preset: TrainConfig.Preset?
        @Option(help: "infonce or nce (moco, memory-bank).") var loss: ContrastLoss?
        @Option(help: "Memory bank rows (the dataset size).") var bankSize = 60_000
        @Option(help: "resnet20 and its widened forms (1x28x28) or resnet18 (3x32x32).") var arch: Architecture = .resnet20
        @Option(help: "Global batch size.") var batchSize = 256
        @Option(help: "Queue size K.") var queueSize = 4096
        @Option(help: "Engine threads per rank.") var threads: Int?
        @Option(help: "BatchNorm splits per rank.") var bnSplits = 1
        @Option(help: "Floats per gradient-allreduce bucket (started during the backward pass as soon as that many more gradients are final).") var bucketFloats = MoCoConfig().bucketFloats
        @Option(help: "Warm-up steps.") var warmup = 2
        @Option(help: "Measured steps.") var steps = 10
        @Flag(help: "Symmetric loss.") var symmetric = false
        @Flag(help: "Print one JSON line.") var json = false
        @Option(help: "3x3 stride-1 convolutions (default: MOCO_CONV, else winograd4).") var conv: ConvAlgorithm?
        @Option(name: .customLong("conv-dw"), help: "Weight gradient of the Winograd convolutions (default: MOCO_CONV_DW, else winograd).") var convDW: WeightGradAlgorithm?
        @Option(name: .customLong("conv-strided"), help: "Forward of the strided 3x3 convolutions: direct (AVX2 kernel, no im2col columns) or im2col (default: MOCO_CONV_STRIDED, else direct).") var convStrided: StridedConvAlgorithm?
        @Option(help: ArgumentHelp("Write a Chrome trace of each rank's steps, phases and collectives to FILE (FILE.rankR.json under mpirun; an existing file is not replaced).", valueName: "file")) var timeline: String?
        @Option(help: Runtime.progressThreadHelp) var progressThread = 0

        func run() throws {
            Runtime.run { comm in
                try comm.agreeing { try Runtime.startProgressThread(comm, microseconds: progressThread) }
                var c = StepBench.Config()
                c.engine = try Runtime.engine(threads: threads, conv: conv, weightGrad: convDW, strided: convStrided)
                // A preset's step; moco-v3 alone means its preset's (mlp-bn projector, predictor, LARS).
                if let preset { c.moco = TrainConfig.preset(preset).moco }
                else if mechanism == .mocoV3 { c.moco = TrainConfig.preset(.mocoV3).moco }
                let mechanism = mechanism ?? c.moco.mechanism
                c.moco.architecture = arch
                if arch == .resnet18 { c.channels = 3; c.height = 32; c.width = 32 }
                c.batchSize = batchSize; c.moco.queueSize = queueSize; c.moco.bnSplits = bnSplits
                guard bucketFloats > 0 else { throw ValidationError("--bucket-floats must be positive, got \(bucketFloats)") }
                c.moco.bucketFloats = bucketFloats
                c.warmup = warmup; c.steps = steps; c.moco.symmetric = symmetric
                c.moco.mechanism = mechanism; c.datasetCount = bankSize
                if let loss { c.moco.loss = loss }
                let loss = c.moco.loss
                guard bankSize >= batchSize else { throw ValidationError("--bank-size must be at least the batch") }
                guard !(mechanism == .endToEnd && loss == .nce) else { throw ValidationError("--loss nce needs moco or memory-bank") }
                guard steps > 0, warmup >= 0 else { throw ValidationError("--steps must be positive") }
                let trace = try timeline.map { try Timeline.open($0, comm: comm) }
                defer { trace?.close() }
                let r = try comm.agreeing {
                    try StepBench.run(c, comm: trace.map { TracingCommunicator(comm, timeline: $0) } ?? comm, timeline: trace)
                }
                if json {
                    let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
                    say(comm, String(decoding: try enc.encode(r), as: UTF8.self))
                } else {
                    say(comm, String(format: "%@ %@ global batch %d, %d rank(s) x %d thread(s), conv %@ (dW %@, strided %@%@): %.1f img/s (median step %.1f ms)",
                                     r.mechanism, r.arch, r.batch, r.world, r.threads, r.conv, r.conv_dw, r.conv_strided,
                                     r.winograd_fused.isEmpty ? "" : ", fused " + r.winograd_fused, r.images_per_s, r.step_ms_median))
                    say(comm, String(format: "model %.1f GFLOP/s (passes x %.1f MFLOP/img); sgemm peak %.1f GFLOP/s (OpenBLAS %@); %.0f%% of it",
                                     r.gflops, r.forward_mflop_per_image, r.sgemm_peak_gflops, r.blas_core, 100 * r.fraction_of_sgemm_peak))
                    say(comm, r.fma_peak_gflops > 0
                        ? String(format: "FMA peak %.1f GFLOP/s (%d rank(s) x %d thread(s), %@ FMA chains, measured now); the step runs %.0f%% of it",
                                 r.fma_peak_gflops, r.world, r.threads, FMAPeak.isa, 100 * r.fraction_of_fma_peak)
                        : "FMA peak: not measured (the CPU has no AVX2/FMA)")
                    for (k, v) in r.phases_ms.sorted(by: { $0.key < $1.key }) { say(comm, String(format: "  %-30@ %8.2f ms", k, v)) }
                    say(comm, String(format: "peak RSS %.0f MB per rank, %.0f MB of it in huge pages%@", r.peak_rss_mb, r.huge_pages_mb,
                                      HugePages.enabled ? "" : " (MOCO_THP=0)"))
                    for (k, v) in r.comm_bytes_per_step.sorted(by: { $0.key < $1.key }) { say(comm, String(format: "  sent/step %-14@ %10.0f B", k, v)) }
                }
            }
        }
    }

    struct CommBenchCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "comm",
            abstract: "allreduce, allgather and alltoallv bandwidth over message sizes, beside raw MPI on the same buffers.")
        @Option(help: "Iterations per size.") var iterations = 20
        @Option(help: "Largest message in bytes.") var maxBytes = 16 << 20

        func run() throws {
            Runtime.run { comm in
                var sizes: [Int] = []
                var s = 1024
                while s <= maxBytes { sizes.append(s); s *= 4 }
                let rows = try runCommBench(comm: comm, sizes: sizes, iterations: iterations)
                say(comm, formatCommBench(rows))
            }
        }
    }

    struct Augment: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Images/s of one thread making MoCo v2 two-crop views (a data-loader producer), 1x28x28 and 3x32x32.")
        @Option(help: "Images (two views each) per measurement.") var images = 20_000

        func run() throws {
            Runtime.run { comm in
                guard images > 0 else { throw ValidationError("--images must be positive") }
                for r in AugmentBench.run(images: images) {
                    say(comm, String(format: "two-crop v2 %dx%dx%d: %.0f images/s (%.0f views/s)", r.channels, r.side, r.side,
                                     r.imagesPerSecond, 2 * r.imagesPerSecond))
                }
            }
        }
    }

    struct Soak: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resident memory over thousands of training steps (moco-v2 through the real trainer, loader and checkpoints): flat after warm-up, or a leak.")
        @Option(help: "Training steps.") var steps = 3000
        @Option(help: "Sample the resident set every N steps.") var every = 100
        @Option(help: "Steps before the drift is measured.") var warmup = 500
        @Option(help: "Global batch size.") var batchSize = 64
        @Option(help: "Dataset: fashion-mnist or synthetic.") var data: DatasetKind = .fashionMNIST
        @Option(help: "Train on the first N images (0 = all): shorter epochs, so more epoch ends and checkpoint writes.") var trainSubset = 0
        @Option(help: "Mechanism.") var mechanism: Mechanism = .moco
        @Option(help: "Engine threads per rank (default: cores / ranks).") var threads: Int?
        @Option(help: "Output folder of the run (default: a temporary folder, removed afterwards).") var out: String?

        func run() throws {
            Runtime.run { comm in
                guard steps > 0, every > 0, warmup >= 0, batchSize > 0 else {
                    throw ValidationError("--steps, --every and --batch-size must be positive, --warmup >= 0")
                }
                var c = TrainConfig.preset(.mocoV2)
                c.data = data; c.batchSize = batchSize; c.moco.mechanism = mechanism; c.trainSubset = trainSubset
                if comm.size > 1 { c.moco.bnSplits = 1 }
                c.engine = try Runtime.engine(threads: threads, conv: nil)
                let perEpoch = max(1, try Trainer.loadData(c, comm: comm).train.count / batchSize)
                c.epochs = (steps + perEpoch - 1) / perEpoch
                c.knnEvery = 0; c.saveEvery = 1; c.logEvery = max(every, 10)
                let dir = out ?? FileManager.default.temporaryDirectory.appendingPathComponent("moco-soak-\(getpid())").path
                c.out = dir
                defer { if out == nil && comm.rank == 0 { try? FileManager.default.removeItem(atPath: dir) } }
                let probe = SoakProbe(every: every) { s in
                    let rss = (try? comm.allreduce(s.rssMB, op: .max)) ?? s.rssMB
                    say(comm, String(format: "soak: step %d  %.0f s  RSS %.1f MB (max over ranks)", s.step, s.seconds, rss))
                }
                say(comm, "soak: at least \(steps) steps (\(c.epochs) epochs of \(perEpoch) steps, batch \(batchSize)), RSS every \(every) steps")
                _ = try Trainer(config: c, comm: comm, hooks: probe, say: { _ in }).run(stopAfter: nil)
                guard let sm = probe.summary(warmup: warmup) else { throw ValidationError("fewer than 2 samples after --warmup \(warmup)") }
                let drift = try comm.allreduce(sm.driftPerThousandSteps, op: .max)
                say(comm, String(format: "soak: after step %d: RSS %.1f -> %.1f MB (max %.1f), drift %+.2f MB per 1000 steps (least squares over %d samples; max over ranks)",
                                 warmup, sm.warmRSS, sm.finalRSS, sm.maxRSS, drift, sm.samplesUsed))
            }
        }
    }
}
