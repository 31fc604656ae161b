extension Encoder {
    /// One convolution with the input size it sees for an h x w image.
    public struct ConvShape: Sendable {
        public let name: String
        public let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int
        public let height: Int, width: Int
        public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
        public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
        /// 2 × multiply-accumulates per image.
        public var flops: Double { 2.0 * Double(outChannels * inChannels * kernel * kernel * outHeight * outWidth) }
        public var key: String { "\(inChannels)-\(outChannels)-\(kernel)-\(stride)-\(height)x\(width)" }
    }

    /// Every convolution in forward order with its input size.
    public func convShapes(height h: Int, width w: Int) -> [ConvShape] {
        func shape(_ c: Conv2d, _ h: Int, _ w: Int) -> ConvShape {
            ConvShape(name: c.name, inChannels: c.inChannels, outChannels: c.outChannels, kernel: c.kernel,
                      stride: c.stride, padding: c.padding, height: h, width: w)
        }
        var out = [shape(conv1, h, w)]
        var ch = out[0].outHeight, cw = out[0].outWidth
        for b in blocks {
            let s1 = shape(b.conv1, ch, cw)
            out.append(s1)
            out.append(shape(b.conv2, s1.outHeight, s1.outWidth))
            if let d = b.downsampleConv { out.append(shape(d, ch, cw)) }
            ch = s1.outHeight; cw = s1.outWidth
        }
        return out
    }

    /// Forward FLOPs per image (2 × multiply-accumulates of every convolution and linear layer;
    /// BatchNorm, ReLU and pooling are not counted, as is customary) for an h x w input.
    public func forwardFLOPs(height h: Int, width w: Int, withHead: Bool = true) -> Double {
        var flops = convShapes(height: h, width: w).reduce(0) { $0 + $1.flops }
        if withHead {
            for lin in linears { flops += 2.0 * Double(lin.inFeatures * lin.outFeatures) }
        }
        return flops
    }
}
