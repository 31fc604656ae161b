import MoCoComm

/// One record of a run's log, as rank 0 writes it to `OUT/metrics.jsonl` (a JSON object with
/// `type`, `epoch`, `step`, `elapsed_s` and the values) and to TensorBoard (`RunLog`): each
/// value has a metrics.jsonl field and a TensorBoard tag. docs/training.md ("Output") lists them.
struct MetricsRecord {
    enum Kind: String { case train, knn, consistency }
    let kind: Kind
    /// train: the epoch the step belongs to (0-based); knn: completed epochs.
    let epoch: Int
    /// Global steps completed.
    let step: Int
    /// Seconds since this invocation started.
    let elapsed: Double
    let values: [(field: String, tag: String, value: Double)]
    /// metrics.jsonl fields without a TensorBoard tag (counts).
    var counts: [String: Int] = [:]

    /// A progress record: the window's means (`ProgressWindow.Stats`) and the step's lr.
    static func train(epoch: Int, step: Int, elapsed: Double, lr: Double, window w: ProgressWindow.Stats) -> MetricsRecord {
        let ms = 1000.0, t = w.timings
        return MetricsRecord(kind: .train, epoch: epoch, step: step, elapsed: elapsed, values: [
            ("loss", "train/loss", w.loss),
            ("acc1", "train/acc1", w.acc1),
            ("lr", "train/lr", lr),
            ("images_per_s", "train/images_per_s", w.imagesPerSecond),
            ("step_ms", "time/step_ms", w.stepSeconds * ms),
            ("data_wait_ms", "time/data_wait_ms", w.dataWait * ms),
            ("query_forward_ms", "time/query_forward_ms", t.queryForward * ms),
            ("key_forward_ms", "time/key_forward_ms", t.keyForward * ms),
            ("loss_ms", "time/loss_ms", t.loss * ms),
            ("backward_ms", "time/backward_ms", t.backward * ms),
            ("allreduce_wait_ms", "time/allreduce_wait_ms", t.allreduceWait * ms),
            ("optimizer_ms", "time/optimizer_ms", t.optimizer * ms),
            ("enqueue_ms", "time/enqueue_ms", t.enqueue * ms),
        ])
    }

    /// A kNN monitor record (top-1 in %).
    static func knn(epoch: Int, step: Int, elapsed: Double, top1: Double) -> MetricsRecord {
        MetricsRecord(kind: .knn, epoch: epoch, step: step, elapsed: elapsed, values: [("knn_top1", "knn/top1", top1)])
    }

    /// A key-consistency record (`--log-consistency`, `KeyConsistencyProbe`): mean cosine of
    /// the stored negatives to their recomputed keys, their mean age in steps, and how many.
    static func consistency(epoch: Int, step: Int, elapsed: Double, cos: Double, age: Double, entries: Int) -> MetricsRecord {
        MetricsRecord(kind: .consistency, epoch: epoch, step: step, elapsed: elapsed,
                      values: [("cos", "consistency/cos", cos), ("age", "consistency/age_steps", age)],
                      counts: ["entries": entries])
    }

    /// The metrics.jsonl object.
    var json: [String: Any] {
        var o: [String: Any] = ["type": kind.rawValue, "epoch": epoch, "step": step, "elapsed_s": elapsed]
        for v in values { o[v.field] = v.value }
        for (k, n) in counts { o[k] = n }
        return o
    }

    /// The TensorBoard scalars (float32, as `Summary.Value.simple_value` holds them).
    var scalars: [(tag: String, value: Float)] { values.map { ($0.tag, Float($0.value)) } }
}
