import ArgumentParser
import Foundation
import MoCo
import MoCoTensor

/// `moco memory`: the dictionary's memory per rank against the dataset size (issue 12, item 2;
/// He et al. 2020 sec. 3.2 and Fig. 2: MoCo's queue is "decoupled from the dataset size", a
/// memory bank holds a feature per image). Allocates the trainer's own structures (a `KeyQueue`,
/// a `MemoryBank` with its per-step draws [n, K] and their grouping by row) at the given sizes, reports the bytes of their
/// buffers and the growth of this process's resident set as each is filled, and computes the
/// same sizes for a larger dataset without allocating it.
struct Memory: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the dictionary memory per rank: MoCo's queue (dim x K) against the memory bank (N x dim), at N images and computed for a larger N.")

    @Option(help: "Feature dimension.") var dim = 128
    @Option(help: "K: queue length (moco) and bank samples per query (memory-bank).") var queueSize = 4096
    @Option(help: "Per-rank batch (the bank's per-step grouping of its n x (1 + K) draws).") var batch = 256
    @Option(help: "Dataset sizes to allocate and measure, comma-separated.") var images = "60000"
    @Option(help: "Dataset sizes only to compute, comma-separated (ImageNet-1k: 1281167).") var project = "1281167"
    @Option(help: "Also write the table as CSV to this file.") var csv: String?

    struct Row { var mechanism: String; var images: Int; var buffers: Int; var rss: Int?; var measured: Bool }

    func run() throws {
        Runtime.run { _ in
            func sizes(_ s: String, _ flag: String) throws -> [Int] {
                let v = s.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard v.allSatisfy({ $0 != nil && $0! > 0 }) else { throw ValidationError("\(flag) must be positive integers separated by commas, got '\(s)'") }
                return v.map { $0! }
            }
            guard dim > 0, queueSize > 0, batch > 0 else { throw ValidationError("--dim, --queue-size and --batch must be positive") }
            let measured = try sizes(images, "--images"), computed = project.isEmpty ? [] : try sizes(project, "--project")
            var rows: [Row] = []
            for n in measured {
                var before = Self.residentBytes()
                let queue = KeyQueue(dim: dim, size: queueSize, seed: 0)
                rows.append(Row(mechanism: "moco queue", images: n, buffers: queue.keys.count * 4, rss: Self.residentBytes() - before,
                                measured: true))
                withExtendedLifetime(queue) {}
                before = Self.residentBytes()
                let bank = MemoryBank(count: n, dim: dim, seed: 0)
                var g = MemoryBank.Grouping()
                let draws = [Int32](repeating: 0, count: batch * queueSize), pos = (0..<batch).map { Int32($0 % n) }
                pos.withUnsafeBufferPointer { p in
                    draws.withUnsafeBufferPointer { g.build(positives: p.baseAddress!, negatives: $0.baseAddress!, rows: batch, perSample: queueSize, bankRows: n) }
                }
                let bytes = bank.features.count * 4 + (g.start.count + n + g.slots.count + draws.count) * 4
                rows.append(Row(mechanism: "memory bank", images: n, buffers: bytes, rss: Self.residentBytes() - before, measured: true))
                withExtendedLifetime((bank, g, draws)) {}
            }
            for n in computed {
                rows.append(Row(mechanism: "moco queue", images: n, buffers: dim * queueSize * 4, rss: nil, measured: false))
                rows.append(Row(mechanism: "memory bank", images: n, buffers: (n * dim + (n + 1) + n + batch * (1 + queueSize) + batch * queueSize) * 4,
                                rss: nil, measured: false))
            }
            emit("dictionary memory per rank, dim \(dim), K \(queueSize), per-rank batch \(batch) (every rank keeps the whole queue or bank)")
            emit("| dictionary | images N | buffers (MB) | resident growth (MB) | |\n|---|---|---|---|---|")
            for r in rows {
                emit(String(format: "| %@ | %d | %.1f | %@ | %@ |", r.mechanism, r.images, Double(r.buffers) / 1e6,
                            r.rss.map { String(format: "%.1f", Double($0) / 1e6) } ?? "-", r.measured ? "measured" : "computed"))
            }
            if let csv {
                var s = "mechanism,images,dim,k,buffer_bytes,rss_growth_bytes,measured\n"
                for r in rows { s += "\(r.mechanism),\(r.images),\(dim),\(queueSize),\(r.buffers),\(r.rss.map(String.init) ?? ""),\(r.measured)\n" }
                do { try s.write(toFile: csv, atomically: true, encoding: .utf8) } catch { throw ValidationError("cannot write \(csv): \(error)") }
            }
        }
    }

    /// This process's resident set (/proc/self/statm, field 2, in pages), 0 where unavailable.
    static func residentBytes() -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let f = s.split(separator: " ")
        return f.count > 1 ? (Int(f[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }
}
