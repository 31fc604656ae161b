import MoCoTensor
import MoCoLayers
import MoCoComm

/// `moco bench ops`: forward and backward time of each distinct convolution shape of an
/// encoder at a batch size, with the sgemm GFLOP/s of the same GEMM shape measured alongside.
public enum OpsBench {
    public struct Row: Sendable {
        public let arch: String
        public let shape: Encoder.ConvShape
        public let batch: Int
        public let forwardMs: Double, backwardMs: Double
        public let forwardGflops: Double, backwardGflops: Double
        /// sgemm alone on the forward GEMM shape [K, C·k·k] @ [C·k·k, N·Ho·Wo].
        public let gemmGflops: Double
    }

    public static func run(architecture: Architecture, inChannels: Int, height: Int, width: Int, batch: Int,
                           repeats: Int = 5, engine: EngineConfig) -> [Row] {
        let e = Encoder(architecture: architecture, head: .mlp, inChannels: inChannels, trainable: false, engine: engine)
        var seen = Set<String>()
        var rows: [Row] = []
        for s in e.convShapes(height: height, width: width) where seen.insert(s.key).inserted {
            let params = ParameterStore(), ws = Workspace()
            let conv = Conv2d("c", params: params, workspace: ws, inChannels: s.inChannels, outChannels: s.outChannels,
                              kernel: s.kernel, stride: s.stride, padding: s.padding, engine: engine)
            params.finalize()
            var rng = Xoshiro(seed: 3)
            for i in 0..<params.count { params.values.ptr[i] = rng.normal() * 0.1 }
            conv.plan(batch: batch, height: s.height, width: s.width, backward: true)
            let x = FloatBuffer(count: s.inChannels * batch * s.height * s.width)
            for i in 0..<x.count { x.ptr[i] = rng.normal() }
            let dy = FloatBuffer(count: conv.y.count)
            for i in 0..<dy.count { dy.ptr[i] = rng.normal() }
            conv.forward(x.ptr); conv.backward(dy.ptr)
            var fw: [Double] = [], bw: [Double] = []
            for _ in 0..<repeats {
                var watch = Stopwatch(); conv.forward(x.ptr); fw.append(watch.elapsed)
                watch.restart(); conv.backward(dy.ptr); bw.append(watch.elapsed)
            }
            let flops = s.flops * Double(batch)
            let f = median(fw), b = median(bw)
            let gemm = SgemmPeak.gflops(m: s.outChannels, n: batch * s.outHeight * s.outWidth,
                                        k: s.inChannels * s.kernel * s.kernel, repeats: 3, threads: engine.threads)
            rows.append(Row(arch: architecture.rawValue, shape: s, batch: batch, forwardMs: f * 1e3, backwardMs: b * 1e3,
                            forwardGflops: flops / f / 1e9, backwardGflops: 2 * flops / b / 1e9, gemmGflops: gemm))
        }
        return rows
    }
}
