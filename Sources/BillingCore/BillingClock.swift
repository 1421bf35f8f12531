internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// Where billingd reads the time. One clock is made at start and handed to
/// everything that reads it: the store (the times on records), the payment
/// flows (grace periods, a payment's time to live), the poller (when checks
/// are due, how long to sleep) and the webhooks (signature tolerance).
///
/// Instants are Unix milliseconds UTC, as in the API and the records;
/// relative times are `Duration`. Tests pass a `ManualClock` and move time by
/// hand instead of sleeping.
public protocol BillingClock: Sendable {
    /// Now, in milliseconds since the Unix epoch (UTC).
    var nowMs: Int64 { get }

    /// Returns once `duration` has passed on this clock.
    ///
    /// - Throws: `CancellationError` when the task is cancelled first.
    func sleep(for duration: Duration) async throws
}

extension BillingClock {
    /// `duration` from now, in Unix milliseconds (saturating: a configured
    /// duration is bounded, so this never saturates in practice).
    public func nowMs(plus duration: Duration) -> Int64 {
        let (sum, overflow) = nowMs.addingReportingOverflow(duration.milliseconds)
        return overflow ? .max : sum
    }
}

/// The machine's wall clock; sleeps are the task's own.
public struct SystemClock: BillingClock {
    public init() {}

    public var nowMs: Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
    }

    public func sleep(for duration: Duration) async throws {
        try await Task.sleep(for: duration)
    }
}

/// A clock that moves only when told: `advance(by:)` moves it and wakes the
/// sleepers whose time has come. With `tick`, every reading also moves it by
/// that much, so every record written gets a distinct, ordered time.
///
/// Thread-safe; for tests and benchmarks.
public final class ManualClock: BillingClock {
    private struct Sleeper {
        let deadlineMs: Int64
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var nowMs: Int64
        var sleepers: [UInt64: Sleeper] = [:]
        var nextSleeper: UInt64 = 0
    }

    private let state: Mutex<State>
    private let tickMs: Int64

    /// - Parameters:
    ///   - startMs: the first reading (2027-01-15 by default: inside the
    ///     years `Timestamps` accepts, and after any fixed date in the tests).
    ///   - tick: how far each reading moves the clock.
    public init(startMs: Int64 = 1_800_000_000_000, tick: Duration = .zero) {
        state = Mutex(State(nowMs: startMs))
        tickMs = tick.milliseconds
    }

    public var nowMs: Int64 {
        if tickMs == 0 { return state.withLock { $0.nowMs } }
        let (now, woken) = state.withLock { state in
            state.nowMs += tickMs
            return (state.nowMs, Self.takeDue(&state))
        }
        for sleeper in woken { sleeper.resume() }
        return now
    }

    /// How many tasks sleep on this clock now: a test waits for its subject
    /// to be asleep before it moves time.
    public var sleepers: Int {
        state.withLock { $0.sleepers.count }
    }

    public func advance(by duration: Duration) {
        let woken = state.withLock { state in
            state.nowMs += duration.milliseconds
            return Self.takeDue(&state)
        }
        for sleeper in woken { sleeper.resume() }
    }

    public func sleep(for duration: Duration) async throws {
        let id = state.withLock { state -> UInt64 in
            state.nextSleeper += 1
            return state.nextSleeper
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow = state.withLock { state -> Bool in
                    if Task.isCancelled || duration <= .zero { return true }
                    state.sleepers[id] = Sleeper(
                        deadlineMs: state.nowMs + duration.milliseconds,
                        continuation: continuation
                    )
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let sleeper = state.withLock { $0.sleepers.removeValue(forKey: id) }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
        try Task.checkCancellation()
    }

    private static func takeDue(_ state: inout State) -> [CheckedContinuation<Void, any Error>] {
        let due = state.sleepers.filter { $0.value.deadlineMs <= state.nowMs }
        for id in due.keys { state.sleepers.removeValue(forKey: id) }
        return due.values.map(\.continuation)
    }
}

extension Duration {
    /// Whole milliseconds, rounded toward zero: the unit of every stored instant.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
