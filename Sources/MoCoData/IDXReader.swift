/// Reader for the IDX format of MNIST and Fashion-MNIST (LeCun et al., "THE MNIST DATABASE"):
/// a big-endian header `00 00 TT DD` (TT = 0x08 for unsigned bytes, DD = number of dimensions),
/// DD big-endian UInt32 sizes, then the data in row-major order.
public enum IDX {
    /// An unsigned-byte IDX array: `dims` (outermost first) and the row-major bytes.
    public struct UByteArray: Sendable {
        public let dims: [Int]
        public let bytes: [UInt8]
    }

    /// Reads `path` (gzip-compressed if it ends in `.gz`) and checks it is an unsigned-byte
    /// array of `dimensions` dimensions (3 for images, 1 for labels) with exactly the bytes
    /// the header promises.
    public static func read(path: String, dimensions: Int) throws -> UByteArray {
        try parse(FileBytes.read(path), path: path, dimensions: dimensions)
    }

    /// Parses IDX bytes already in memory; `path` is only used in error messages.
    public static func parse(_ b: [UInt8], path: String, dimensions: Int) throws -> UByteArray {
        let expectedMagic = 0x0800 | UInt32(dimensions)
        let magicText = "expected magic 0x\(hex8(expectedMagic))"
        if b.count < 4 {
            throw DataError.corrupt(path, "truncated at byte \(b.count) of expected header of 4 bytes")
        }
        let magic = be32(b, 0)
        if b[0] != 0 || b[1] != 0 || b[2] != 0x08 {
            throw DataError.corrupt(path, "bad magic: \(magicText) got 0x\(hex8(magic))")
        }
        if Int(b[3]) != dimensions {
            throw DataError.corrupt(path, "wrong dimension count: expected \(dimensions), got \(b[3]) "
                + "(\(magicText) got 0x\(hex8(magic)))")
        }
        let header = 4 + 4 * dimensions
        if b.count < header {
            throw DataError.corrupt(path, "truncated at byte \(b.count) of expected header of \(header) bytes")
        }
        var dims = [Int]()
        var total = 1, overflow = false
        for d in 0..<dimensions {
            let n = Int(be32(b, 4 + 4 * d))
            dims.append(n)
            let (p, o) = total.multipliedReportingOverflow(by: n)
            total = p
            overflow = overflow || o
        }
        // Sizes whose product does not fit an Int describe more data than any file holds (a
        // wrapped product could otherwise match the file's length and pass as a small array).
        let (expected, o) = header.addingReportingOverflow(total)
        if overflow || o {
            throw DataError.corrupt(path, "dimensions \(dims.map(String.init).joined(separator: "x")) describe more bytes "
                + "than a file can hold (corrupt header?); the file is \(b.count) bytes")
        }
        if b.count < expected {
            throw DataError.corrupt(path, "truncated at byte \(b.count) of expected \(expected) "
                + "(dimensions \(dims.map(String.init).joined(separator: "x")))")
        }
        if b.count > expected {
            throw DataError.corrupt(path, "\(b.count - expected) bytes of trailing data: expected \(expected) "
                + "bytes for dimensions \(dims.map(String.init).joined(separator: "x")), found \(b.count)")
        }
        return UByteArray(dims: dims, bytes: Array(b[header...]))
    }

    static func be32(_ b: [UInt8], _ o: Int) -> UInt32 {
        UInt32(b[o]) << 24 | UInt32(b[o + 1]) << 16 | UInt32(b[o + 2]) << 8 | UInt32(b[o + 3])
    }

    static func hex8(_ v: UInt32) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 8 - s.count)) + s
    }
}

extension Dataset {
    /// A dataset from an IDX image file ([N, H, W] bytes) and an IDX label file ([N] bytes,
    /// each < `numClasses`), as MNIST and Fashion-MNIST ship them.
    public static func loadIDX(name: String, imagesPath: String, labelsPath: String, numClasses: Int = 10,
                               mean: [Float], std: [Float]) throws -> Dataset {
        let images = try IDX.read(path: imagesPath, dimensions: 3)
        let labels = try IDX.read(path: labelsPath, dimensions: 1)
        return try fromIDX(name: name, images: images, labels: labels, imagesPath: imagesPath, labelsPath: labelsPath,
                           numClasses: numClasses, mean: mean, std: std)
    }

    /// A dataset from an IDX image array ([N, H, W]) and an IDX label array ([N], each <
    /// `numClasses`) already parsed (`IDX.parse`); the paths are only used in error messages.
    public static func fromIDX(name: String, images: IDX.UByteArray, labels: IDX.UByteArray,
                               imagesPath: String, labelsPath: String, numClasses: Int = 10,
                               mean: [Float], std: [Float]) throws -> Dataset {
        if images.dims[0] != labels.dims[0] {
            throw DataError.corrupt(imagesPath, "image/label count mismatch: \(images.dims[0]) images but "
                + "\(labels.dims[0]) labels in \(labelsPath)")
        }
        if images.dims[1] == 0 || images.dims[2] == 0 {
            throw DataError.corrupt(imagesPath, "empty image size \(images.dims[1])x\(images.dims[2])")
        }
        var lab = [Int32](repeating: 0, count: labels.bytes.count)
        for (i, l) in labels.bytes.enumerated() {
            if Int(l) >= numClasses {
                throw DataError.corrupt(labelsPath, "label \(l) at index \(i) is outside 0..<\(numClasses)")
            }
            lab[i] = Int32(l)
        }
        return Dataset(name: name, channels: 1, height: images.dims[1], width: images.dims[2],
                       pixels: images.bytes, labels: lab, numClasses: numClasses, mean: mean, std: std)
    }
}
