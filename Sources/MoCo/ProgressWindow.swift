import MoCoComm

/// Loss, contrastive top-1 and throughput over the steps since the last progress line. Each
/// rank adds its own steps; `close` averages over ranks (a collective every rank calls at the
/// same step) and starts the next window.
struct ProgressWindow {
    private var clock = Stopwatch()
    private var images = 0, steps = 0
    private var lossSum = 0.0, accSum = 0.0

    /// One step of this rank; `images`: the global batch.
    mutating func add(_ r: StepResult, images batch: Int) {
        images += batch; steps += 1
        lossSum += r.loss; accSum += r.acc1
    }

    /// Mean loss and top-1 over ranks and steps, and global images/s, since the window opened.
    mutating func close(comm: Communicator) throws -> (loss: Double, acc1: Double, imagesPerSecond: Double) {
        var v = [lossSum, accSum]
        try comm.allreduce(&v, op: .sum)
        let n = Double(comm.size * max(steps, 1))
        let ips = Double(images) / max(clock.elapsed, 1e-9)
        restart()
        return (v[0] / n, v[1] / n, ips)
    }

    /// Starts an empty window (also after work that is not training, such as the kNN monitor).
    mutating func restart() {
        clock.restart(); images = 0; steps = 0; lossSum = 0; accSum = 0
    }
}
