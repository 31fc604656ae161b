/// Renders bench rows as a fixed-width table (one header line, one line per row).
public func formatCommBench(_ rows: [CommBenchRow]) -> String {
    func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }
    func fixed(_ v: Double, _ digits: Int) -> String {
        guard v.isFinite else { return "-" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let n = Int((abs(v) * scale).rounded())
        let whole = n / Int(scale), frac = n % Int(scale)
        var fracText = String(frac)
        while fracText.count < digits { fracText = "0" + fracText }
        return (v < 0 ? "-" : "") + (digits > 0 ? "\(whole).\(fracText)" : "\(whole)")
    }
    let header = ["op", "bytes", "ranks", "iters", "proto_us", "raw_us", "algbw_GB/s",
                  "raw_algbw_GB/s", "busbw_GB/s", "overhead_%"]
    let widths = [10, 11, 6, 6, 12, 12, 11, 15, 11, 11]
    var lines = [zip(header, widths).map { pad($0, $1) }.joined(separator: " ")]
    for r in rows {
        let cells = [
            r.op.rawValue, String(r.bytes), String(r.ranks), String(r.iterations),
            fixed(r.protocolSeconds * 1e6, 1), r.rawSeconds.map { fixed($0 * 1e6, 1) } ?? "-",
            fixed(r.protocolAlgbw, 3), r.rawAlgbw.map { fixed($0, 3) } ?? "-",
            fixed(r.protocolBusbw, 3), r.overheadPercent.map { fixed($0, 1) } ?? "-",
        ]
        lines.append(zip(cells, widths).map { pad($0, $1) }.joined(separator: " "))
    }
    return lines.joined(separator: "\n")
}
