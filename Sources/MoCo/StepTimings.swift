import MoCoComm

/// Wall-clock seconds of each phase of a step.
public struct StepTimings: Sendable {
    public var queryForward = 0.0, keyForward = 0.0, loss = 0.0, backward = 0.0
    public var allreduceWait = 0.0, optimizer = 0.0, enqueue = 0.0
    public init() {}
    public var total: Double { queryForward + keyForward + loss + backward + allreduceWait + optimizer + enqueue }
    public static func + (a: StepTimings, b: StepTimings) -> StepTimings {
        var r = a
        r.queryForward += b.queryForward; r.keyForward += b.keyForward; r.loss += b.loss; r.backward += b.backward
        r.allreduceWait += b.allreduceWait; r.optimizer += b.optimizer; r.enqueue += b.enqueue
        return r
    }
}

/// Splits a step's wall-clock time into phases: each `lap` adds the time since the previous lap
/// (or since creation) to one phase of `timings`.
/// With a timeline (`--timeline`), each lap is also a span on its phases lane.
struct PhaseClock {
    private(set) var timings = StepTimings()
    private var last = MonotonicClock.now()
    private let timeline: Timeline?

    init(timeline: Timeline? = nil) { self.timeline = timeline }

    mutating func lap(_ phase: WritableKeyPath<StepTimings, Double>) {
        let t = MonotonicClock.now()
        timings[keyPath: phase] += t - last
        timeline?.span(StepTimings.name(of: phase), category: "phase", lane: .phases, start: last, end: t)
        last = t
    }
}

extension StepTimings {
    /// The name of a phase in timelines and tables.
    static func name(of phase: WritableKeyPath<StepTimings, Double>) -> String {
        switch phase {
        case \StepTimings.queryForward: return "query forward"
        case \StepTimings.keyForward: return "key forward"
        case \StepTimings.loss: return "loss"
        case \StepTimings.backward: return "backward"
        case \StepTimings.allreduceWait: return "allreduce wait"
        case \StepTimings.optimizer: return "optimizer"
        case \StepTimings.enqueue: return "enqueue"
        default: return "phase"
        }
    }
}
