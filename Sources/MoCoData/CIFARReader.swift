/// Reader for the CIFAR-10 binary version (Krizhevsky 2009, `cifar-10-binary.tar.gz`): each
/// record is 1 label byte followed by 3072 pixel bytes, the 32x32 red, green and blue planes
/// in that order (so a record is already CHW); 10000 records per batch file.
public enum CIFAR10 {
    public static let recordBytes = 1 + 3 * 32 * 32
    public static let recordsPerFile = 10_000
    public static let trainFiles = (1...5).map { "data_batch_\($0).bin" }
    public static let testFiles = ["test_batch.bin"]

    /// Reads one batch file: pixels [n, 3, 32, 32] and labels [n]. With `expectedRecords` the
    /// file must hold exactly that many records; without, any whole number of records.
    public static func readBatch(path: String, expectedRecords: Int? = recordsPerFile) throws
        -> (pixels: [UInt8], labels: [Int32]) {
        try parseBatch(FileBytes.read(path), path: path, expectedRecords: expectedRecords)
    }

    /// Parses the bytes of a batch file already in memory (as `readBatch`); `path` is only used
    /// in error messages.
    public static func parseBatch(_ b: [UInt8], path: String, expectedRecords: Int? = recordsPerFile) throws
        -> (pixels: [UInt8], labels: [Int32]) {
        let n: Int
        if let e = expectedRecords {
            let expected = e * recordBytes
            if b.count < expected {
                throw DataError.corrupt(path, "truncated at byte \(b.count) of expected \(expected) "
                    + "(\(e) records of \(recordBytes) bytes)")
            }
            if b.count > expected {
                throw DataError.corrupt(path, "\(b.count - expected) bytes of trailing data: expected \(expected) "
                    + "(\(e) records of \(recordBytes) bytes)")
            }
            n = e
        } else {
            if b.count % recordBytes != 0 || b.isEmpty {
                let expected = max(1, (b.count + recordBytes - 1) / recordBytes) * recordBytes
                throw DataError.corrupt(path, "truncated at byte \(b.count) of expected \(expected) "
                    + "(records are \(recordBytes) bytes)")
            }
            n = b.count / recordBytes
        }
        let plane = recordBytes - 1
        var pixels = [UInt8](repeating: 0, count: n * plane)
        var labels = [Int32](repeating: 0, count: n)
        try b.withUnsafeBufferPointer { src in
            try pixels.withUnsafeMutableBufferPointer { dst in
                for r in 0..<n {
                    let l = src[r * recordBytes]
                    if l >= 10 {
                        throw DataError.corrupt(path, "label \(l) of record \(r) (byte \(r * recordBytes)) is outside 0..<10")
                    }
                    labels[r] = Int32(l)
                    (dst.baseAddress! + r * plane).update(from: src.baseAddress! + r * recordBytes + 1, count: plane)
                }
            }
        }
        return (pixels, labels)
    }
}
