import MoCo
import MoCoTensor
import MoCoLayers
import MoCoComm

/// `moco bench step`: the full training step on synthetic input (no data loading), as
/// `moco train` runs it, for any mechanism: MoCo (both encoders, shuffle-BN, InfoNCE against the
/// queue, backward with the bucketed gradient allreduce, SGD, momentum update and enqueue), the
/// memory bank (sampled negatives, bank update) or end-to-end (two backward passes, key
/// gradients reduce-scattered). It takes the step's own configuration (`MoCoConfig`,
/// `EngineConfig`), so it measures exactly what training runs.
public enum StepBench {
    public struct Config: Sendable {
        public var moco = MoCoConfig()
        public var engine = EngineConfig()
        /// Global batch over all ranks.
        public var batchSize = 256
        public var channels = 1, height = 28, width = 28
        public var warmup = 2, steps = 10
        /// Rows of the memory bank (the dataset size; memory-bank and NCE).
        public var datasetCount = 60_000
        public init() {}
    }

    public struct Result: Codable, Sendable {
        public var impl = "swift-moco"
        public var mechanism = "moco"
        public var arch: String
        public var batch: Int
        public var world: Int
        public var threads: Int
        public var images_per_s: Double
        public var step_ms_median: Double
        public var gflops: Double
        public var forward_mflop_per_image: Double
        public var sgemm_peak_gflops: Double
        public var fraction_of_sgemm_peak: Double
        /// The FMA peak of this rank's threads summed over ranks, measured after the steps
        /// (`FMAPeak`; 0 without AVX2/FMA), and the model GFLOP/s as a fraction of it.
        public var fma_peak_gflops: Double
        public var fraction_of_fma_peak: Double
        public var phases_ms: [String: Double]
        public var peak_rss_mb: Double
        /// Of the resident set after the steps, MB in transparent huge pages (`HugePages`; 0
        /// with `MOCO_THP=0` or where the kernel gives none).
        public var huge_pages_mb: Double = 0
        public var comm_bytes_per_step: [String: Double]
        /// Milliseconds per step inside each kind of collective (blocking calls; for iallreduce
        /// its start and its wait), this rank (`CommStats`).
        public var comm_ms_per_step: [String: Double]
        /// Algorithm of the 3x3 stride-1 convolutions.
        public var conv: String
        /// Algorithm of their weight gradient.
        public var conv_dw: String
        /// Algorithm of the strided convolutions' forward.
        public var conv_strided: String
        /// Registers of the fused Winograd kernel's tile GEMM (`WinogradFused.kernelName`):
        /// "avx512", "avx2", or "" where the fused kernel does not run.
        public var winograd_fused: String
        /// OpenBLAS's kernel set (`BLASCore.current`), e.g. "SkylakeX".
        public var blas_core: String
        /// The gradient buckets in the order their allreduces started (this rank; none on one
        /// rank): floats, and the median over the measured steps of how many milliseconds
        /// before the end of the backward pass each started (`GradientBuckets.lastStarts`).
        public var bucket_floats: [Int] = []
        public var bucket_lead_ms: [Double] = []
        /// The slowest rank's computation per step: its median step time less its time in the
        /// allreduce wait and in blocking collectives (which include waiting for slower peers).
        public var compute_ms_max: Double = 0
        /// `--progress-thread` in microseconds (0: none).
        public var progress_thread_us: Int = 0
    }

    /// - Parameter timeline: where each step and its phases are recorded (`--timeline`), if anywhere.
    public static func run(_ c: Config, comm: Communicator, timeline: Timeline? = nil) throws -> Result {
        let W = comm.size
        guard c.batchSize % W == 0 else { throw ConfigError("--batch-size \(c.batchSize) is not divisible by \(W) ranks") }
        let n = c.batchSize / W
        guard n % c.moco.bnSplits == 0 else { throw ConfigError("per-rank batch \(n) not divisible by --bn-splits \(c.moco.bnSplits)") }
        let model = Methods.make(config: c.moco, inChannels: c.channels, datasetCount: c.datasetCount, engine: c.engine,
                                 seed: 0, comm: comm)
        model.timeline = timeline
        model.plan(localBatch: n, channels: c.channels, height: c.height, width: c.width)
        let size = c.channels * c.height * c.width
        let imQ = FloatBuffer(count: n * size), imK = FloatBuffer(count: n * size)
        var rng = Xoshiro(seed: 42, stream: [UInt64(comm.rank)])
        for i in 0..<imQ.count { imQ.ptr[i] = rng.normal(); imK.ptr[i] = rng.normal() }
        var times: [Double] = []
        var phases = StepTimings()
        var leads: [[Double]] = []   // per measured step, per bucket
        var bucketFloats: [Int] = []
        for s in 0..<(c.warmup + c.steps) {
            var prng = Xoshiro(seed: 7, stream: [UInt64(s)])
            let perm = prng.permutation(c.batchSize)
            if s == c.warmup { comm.resetStats() }
            try comm.barrier()
            let t0 = MonotonicClock.now(), watch = Stopwatch()
            // Distinct bank rows per step, as an epoch's shuffle gives.
            let first = (s * c.batchSize + comm.rank * n) % max(c.datasetCount - n, 1)
            let r = try model.step(StepInput(imQ: imQ.ptr, imK: imK.ptr, indices: Array(first..<(first + n)), perm: perm,
                                             lr: 0.01, step: s))
            let dt = watch.elapsed
            timeline?.span(s < c.warmup ? "warm-up step \(s + 1)" : "step \(s + 1 - c.warmup)", category: "step", lane: .steps,
                           start: t0, end: t0 + dt)
            if s >= c.warmup {
                times.append(dt); phases = phases + r.timings
                bucketFloats = r.buckets.map(\.floats)
                leads.append(r.buckets.map(\.lead))
            }
        }
        let stats = comm.stats   // the measured steps' collectives only
        // Peak memory of the step itself, read before the sgemm peak probe below allocates its
        // own 2048^3 operands.
        let stepPeakRSS = Double(peakResidentBytes()) / 1048576
        let hugeMB = Double(HugePages.residentBytes()) / 1048576
        // The slowest rank sets the pace.
        var step = try comm.allreduce(median(times), op: .max)
        if step <= 0 { step = 1e-9 }
        let flopsPerImage = model.query.forwardFLOPs(height: c.height, width: c.width)
        let ips = Double(c.batchSize) / step
        let peak = try comm.allreduce(SgemmPeak.large(threads: c.engine.threads), op: .sum)
        // All ranks at once, as the step ran: on a shared node the ranks' probes contend as
        // their steps did.
        try comm.barrier()
        let fma = try comm.allreduce(FMAPeak.gflops(threads: c.engine.threads), op: .sum)
        // Forward passes of the encoder per image, a backward counted as two: MoCo q forward +
        // backward + k forward; the bank q only; end-to-end both crops forward and backward.
        let passes: Double = switch c.moco.mechanism { case .moco: 4; case .memoryBank: 3; case .endToEnd: 6; case .mocoV3: 8 }
        let gflops = passes * flopsPerImage * ips / 1e9
        let k = Double(c.steps) / 1e3
        let ph: [String: Double] = [
            "query_forward": phases.queryForward / k, "key_shuffle_forward_unshuffle": phases.keyForward / k,
            "loss": phases.loss / k, "backward": phases.backward / k, "allreduce_wait": phases.allreduceWait / k,
            "optimizer_momentum": phases.optimizer / k, "enqueue": phases.enqueue / k,   // the bank update for memory-bank
        ]
        var bytes: [String: Double] = [:]
        var commMS: [String: Double] = [:]
        for (kind, e) in stats.entries {
            bytes[kind.rawValue] = Double(e.bytesSent) / Double(c.steps)
            commMS[kind.rawValue] = e.seconds * 1e3 / Double(c.steps)
        }
        let rss = try comm.allreduce(stepPeakRSS, op: .max)
        let huge = try comm.allreduce(hugeMB, op: .max)
        let blocking: [CollectiveKind] = [.allreduce, .allgather, .allgatherv, .reduceScatter, .alltoallv, .broadcast]
        let inComm = (phases.allreduceWait + blocking.reduce(0) { $0 + stats[$1].seconds }) / Double(c.steps)
        let compute = try comm.allreduce(median(times) - inComm, op: .max)
        let leadMS = bucketFloats.indices.map { i in median(leads.compactMap { i < $0.count ? $0[i] : nil }) * 1e3 }
        return Result(mechanism: c.moco.mechanism.rawValue, arch: c.moco.architecture.rawValue, batch: c.batchSize, world: W, threads: c.engine.threads,
                      images_per_s: ips, step_ms_median: step * 1e3, gflops: gflops,
                      forward_mflop_per_image: flopsPerImage / 1e6, sgemm_peak_gflops: peak,
                      fraction_of_sgemm_peak: gflops / peak, fma_peak_gflops: fma,
                      fraction_of_fma_peak: fma > 0 ? gflops / fma : 0, phases_ms: ph, peak_rss_mb: rss, huge_pages_mb: huge, comm_bytes_per_step: bytes,
                      comm_ms_per_step: commMS,
                      conv: c.engine.conv.rawValue, conv_dw: c.engine.weightGrad.rawValue, conv_strided: c.engine.strided.rawValue,
                      winograd_fused: c.engine.conv == .winograd4 ? WinogradFused.kernelName : "",
                      blas_core: BLASCore.current, bucket_floats: bucketFloats, bucket_lead_ms: leadMS,
                      compute_ms_max: compute * 1e3, progress_thread_us: (((comm as? TracingCommunicator)?.inner ?? comm) as? MPICommunicator)?.progressInterval ?? 0)
    }
}
