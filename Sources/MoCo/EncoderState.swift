import MoCoTensor
import MoCoLayers
import SafeTensors

/// An encoder's state dict in safetensors, under torchvision's names (optionally prefixed, e.g.
/// `encoder_q.` in checkpoints), so `safetensors.torch.load_file` + `load_state_dict` reads it.
public enum EncoderState {
    /// Adds every parameter, running statistic (F32) and `num_batches_tracked` (I64 scalar).
    public static func add(_ e: Encoder, prefix: String = "", to w: inout SafeTensorsWriter) {
        for t in e.floatState {
            w.add(prefix + t.name, shape: t.shape, floats: UnsafeBufferPointer(start: t.pointer, count: t.shape.reduce(1, *)))
        }
        for (name, v) in zip(e.counterNames, e.counters) { w.add(prefix + name, shape: [], int64s: [v]) }
    }

    /// Loads the state under `prefix`, validating names, dtypes and shapes first: nothing is
    /// changed unless the whole state matches. Missing and unexpected names are listed.
    /// - Parameters:
    ///   - backboneOnly: accept a file without (or with another) head; the head keeps its
    ///     current values (used to evaluate a backbone).
    ///   - skippingPredictor: accept and skip MoCo v3's `predictor.*` tensors when `e` has no
    ///     predictor (evaluating a v3 query encoder's projection).
    public static func load(_ e: Encoder, from f: SafeTensorsFile, prefix: String = "", backboneOnly: Bool = false,
                            skippingPredictor: Bool = false) throws {
        let expected = try validate(e, in: f, prefix: prefix, backboneOnly: backboneOnly, skippingPredictor: skippingPredictor)
        for t in e.floatState where expected[t.name] != nil {
            try f.floats(prefix + t.name, into: t.pointer, count: t.shape.reduce(1, *))
        }
        var counters = e.counters
        for (i, name) in e.counterNames.enumerated() { counters[i] = try f.int64s(prefix + name)[0] }
        e.counters = counters
    }

    /// Checks names, dtypes and shapes of the state under `prefix` without loading it.
    /// -> the float tensors to load, by name
    @discardableResult
    public static func validate(_ e: Encoder, in f: SafeTensorsFile, prefix: String = "", backboneOnly: Bool = false,
                                skippingPredictor: Bool = false) throws -> [String: [Int]] {
        let isHead = { (n: String) in n == "fc.weight" || n == "fc.bias" || n.hasPrefix("fc.") || n.hasPrefix("predictor.") }
        let skipped = { (n: String) in (backboneOnly && isHead(n)) || (skippingPredictor && e.predictor == nil && n.hasPrefix("predictor.")) }
        var expected: [String: [Int]] = [:]
        for t in e.floatState where !(backboneOnly && isHead(t.name)) { expected[t.name] = t.shape }
        let counterNames = Set(e.counterNames)
        let present = Set(f.names(withPrefix: prefix))
        let wanted = Set(expected.keys).union(counterNames)
        let missing = wanted.subtracting(present).sorted()
        let unexpected = present.subtracting(wanted).filter { !skipped($0) }.sorted()
        if !missing.isEmpty || !unexpected.isEmpty {
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing \(missing.count) tensor(s): \(list(missing, prefix))") }
            if !unexpected.isEmpty { parts.append("unexpected \(unexpected.count) tensor(s): \(list(unexpected, prefix))") }
            throw SafeTensorsError(path: f.path, message: "does not match \(e.architecture.rawValue) with \(e.head.rawValue) head and \(e.inChannels) input channel(s): " + parts.joined(separator: "; "))
        }
        for (name, shape) in expected { try f.expect(prefix + name, dtype: .f32, shape: shape) }
        for name in counterNames { try f.expect(prefix + name, dtype: .i64, shape: []) }
        return expected
    }

    private static func list(_ names: [String], _ prefix: String) -> String {
        let shown = names.prefix(5).map { "'\(prefix)\($0)'" }.joined(separator: ", ")
        return names.count > 5 ? shown + ", ..." : shown
    }
}
