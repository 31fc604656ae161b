import MoCoComm

/// Loss, contrastive top-1, throughput and step timings over the steps since the last progress
/// line. Each rank adds its own steps; `close` averages over ranks (a collective every rank
/// calls at the same step) and starts the next window.
struct ProgressWindow {
    private var clock = Stopwatch()
    private var images = 0, steps = 0
    private var lossSum = 0.0, accSum = 0.0
    private var timings = StepTimings(), dataWait = 0.0

    /// What a window reports: means over ranks and steps, except throughput and step time, which
    /// are rank 0's wall clock over the window.
    struct Stats {
        var loss: Double, acc1: Double
        /// Global images per second.
        var imagesPerSecond: Double
        /// Wall-clock seconds per step (everything: data, step, logging).
        var stepSeconds: Double
        /// Seconds per step waiting for the loader's next batch.
        var dataWait: Double
        /// Seconds per step in each phase of the method's step (`PhaseClock`).
        var timings: StepTimings
    }

    /// One step of this rank; `images`: the global batch; `dataWait`: seconds spent waiting for
    /// its batch.
    mutating func add(_ r: StepResult, images batch: Int, dataWait wait: Double = 0) {
        images += batch; steps += 1
        lossSum += r.loss; accSum += r.acc1
        timings = timings + r.timings; dataWait += wait
    }

    /// The window's `Stats` (one allreduce of 10 doubles).
    mutating func close(comm: Communicator) throws -> Stats {
        let t = timings
        var v = [lossSum, accSum, dataWait, t.queryForward, t.keyForward, t.loss, t.backward, t.allreduceWait, t.optimizer, t.enqueue]
        try comm.allreduce(&v, op: .sum)
        for i in v.indices { v[i] /= Double(comm.size * max(steps, 1)) }
        let seconds = max(clock.elapsed, 1e-9)
        var mean = StepTimings()
        mean.queryForward = v[3]; mean.keyForward = v[4]; mean.loss = v[5]; mean.backward = v[6]
        mean.allreduceWait = v[7]; mean.optimizer = v[8]; mean.enqueue = v[9]
        let stats = Stats(loss: v[0], acc1: v[1], imagesPerSecond: Double(images) / seconds,
                          stepSeconds: seconds / Double(max(steps, 1)), dataWait: v[2], timings: mean)
        restart()
        return stats
    }

    /// Starts an empty window (also after work that is not training, such as the kNN monitor).
    mutating func restart() {
        clock.restart(); images = 0; steps = 0; lossSum = 0; accSum = 0; timings = StepTimings(); dataWait = 0
    }
}
