import MoCoTensor
import MoCoData
import MoCoComm

/// `moco bench augment`: throughput of one thread making MoCo v2 two-crop views (the work of
/// one `TwoCropLoader` producer), for 1x28x28 and 3x32x32 images.
public enum AugmentBench {
    public struct Row: Sendable {
        public let channels: Int, side: Int
        public let imagesPerSecond: Double
    }

    public static func run(images: Int = 20_000) -> [Row] {
        [(1, 28), (3, 32)].map { channels, side in
            let ds = Dataset.synthetic(split: .train, count: 2048, channels: channels, height: side, width: side)
            let out = FloatBuffer(count: ds.imageSize)
            let watch = Stopwatch()
            for i in 0..<images {
                for v in 0..<2 {
                    var rng = Xoshiro(seed: 1, stream: [0x4155, 0, UInt64(i), UInt64(v)])
                    augment(ds, index: i % ds.count, config: .mocoV2, rng: &rng, out: out.ptr)
                }
            }
            return Row(channels: channels, side: side, imagesPerSecond: Double(images) / watch.elapsed)
        }
    }
}
