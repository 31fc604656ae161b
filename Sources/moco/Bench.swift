import ArgumentParser
import Foundation
import MoCo
import MoCoComm
import MoCoLayers
import MoCoTensor

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks (use a release build): ops, step, comm.",
        subcommands: [Ops.self, Step.self, CommBenchCommand.self])

    struct Ops: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Forward/backward time and GFLOP/s of every distinct conv shape of ResNet-20 and ResNet-18, beside sgemm.")
        @Option(help: "Batch size.") var batch = 64
        @Option(help: "resnet20, resnet18 or all.") var arch = "all"
        @Option(help: "BLAS threads.") var threads: Int?
        @Option(help: "Timed repetitions per op (median).") var repeats = 5
        @Option(help: "3x3 stride-1 convolutions: winograd4 (default), winograd2 or im2col.") var conv: String?

        func run() throws {
            Runtime.run(threads: threads) { comm in
                try setConvAlgorithm(conv)
                let peak = SgemmPeak.large()
                say(comm, String(format: "sgemm 2048^3: %.1f GFLOP/s with %d thread(s); batch %d; conv %@", peak, BLAS.threads, batch,
                                 Conv2d.algorithm.rawValue))
                say(comm, "arch      conv                      in   out k s  HxW      fwd ms   fwd GF/s  bwd ms   bwd GF/s  sgemm GF/s  fwd/sgemm")
                let archs: [(Architecture, Int, Int)] = arch == "all" ? [(.resnet20, 1, 28), (.resnet18, 3, 32)]
                    : [(try parseArch(arch), arch == "resnet18" ? 3 : 1, arch == "resnet18" ? 32 : 28)]
                for (a, c, hw) in archs {
                    for r in OpsBench.run(architecture: a, inChannels: c, height: hw, width: hw, batch: batch, repeats: repeats) {
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
            abstract: "The full MoCo training step on synthetic data (also under mpirun): images/s, GFLOP/s, phases, memory.")
        @Option(help: "resnet20 (1x28x28) or resnet18 (3x32x32).") var arch = "resnet20"
        @Option(help: "Global batch size.") var batchSize = 256
        @Option(help: "Queue size K.") var queueSize = 4096
        @Option(help: "BLAS threads per rank.") var threads: Int?
        @Option(help: "BatchNorm splits per rank.") var bnSplits = 1
        @Option(help: "Warm-up steps.") var warmup = 2
        @Option(help: "Measured steps.") var steps = 10
        @Flag(help: "Symmetric loss.") var symmetric = false
        @Flag(help: "Print one JSON line.") var json = false
        @Option(help: "3x3 stride-1 convolutions: winograd4 (default), winograd2 or im2col.") var conv: String?

        func run() throws {
            Runtime.run(threads: threads) { comm in
                try setConvAlgorithm(conv)
                var c = StepBench.Config()
                c.architecture = try parseArch(arch)
                if c.architecture == .resnet18 { c.channels = 3; c.height = 32; c.width = 32 }
                c.batchSize = batchSize; c.queueSize = queueSize; c.bnSplits = bnSplits
                c.warmup = warmup; c.steps = steps; c.symmetric = symmetric
                guard steps > 0, warmup >= 0 else { throw ValidationError("--steps must be positive") }
                let r = try comm.agreeing { try StepBench.run(c, comm: comm) }
                if json {
                    let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
                    say(comm, String(decoding: try enc.encode(r), as: UTF8.self))
                } else {
                    say(comm, String(format: "%@ global batch %d, %d rank(s) x %d thread(s), conv %@: %.1f img/s (median step %.1f ms)",
                                     r.arch, r.batch, r.world, r.threads, r.conv, r.images_per_s, r.step_ms_median))
                    say(comm, String(format: "model %.1f GFLOP/s (4 x %.1f MFLOP/img); sgemm peak %.1f GFLOP/s; %.0f%% of it",
                                     r.gflops, r.forward_mflop_per_image, r.sgemm_peak_gflops, 100 * r.fraction_of_sgemm_peak))
                    for (k, v) in r.phases_ms.sorted(by: { $0.key < $1.key }) { say(comm, String(format: "  %-30@ %8.2f ms", k, v)) }
                    say(comm, String(format: "peak RSS %.0f MB per rank", r.peak_rss_mb))
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
            Runtime.run(threads: 1) { comm in
                var sizes: [Int] = []
                var s = 1024
                while s <= maxBytes { sizes.append(s); s *= 4 }
                let rows = try runCommBench(comm: comm, sizes: sizes, iterations: iterations)
                say(comm, formatCommBench(rows))
            }
        }
    }
}

/// Applies `--conv` (every rank parses the same arguments, so they agree).
func setConvAlgorithm(_ name: String?) throws {
    guard let name else { return }
    guard let a = ConvAlgorithm(rawValue: name) else {
        throw ValidationError("unknown --conv '\(name)' (choose \(ConvAlgorithm.choices))")
    }
    Conv2d.algorithm = a
}
