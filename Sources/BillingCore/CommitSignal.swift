internal import Synchronization

/// Tells waiters that the store committed something: event streams and the
/// poller sleep on it instead of polling the database.
///
/// A generation counter, bumped after every commit. A waiter reads it before
/// looking at the database and then waits for a higher one, so a commit that
/// lands between the look and the wait is never missed. Thread-safe.
public final class CommitSignal: Sendable {
    private struct Waiter {
        let continuation: CheckedContinuation<UInt64, Never>
        let deadlineMs: Int64
    }

    private struct State {
        var generation: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
        var nextWaiter: UInt64 = 0
        /// The deadline the timer task sleeps until, and which task that is.
        var armedDeadlineMs: Int64?
        var armedTimer: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    public var generation: UInt64 {
        state.withLock { $0.generation }
    }

    /// Called by the store after each commit.
    public func committed() {
        let (generation, waiters) = state.withLock { state -> (UInt64, [Waiter]) in
            state.generation += 1
            let waiting = Array(state.waiters.values)
            state.waiters.removeAll()
            return (state.generation, waiting)
        }
        for waiter in waiters { waiter.continuation.resume(returning: generation) }
    }

    /// Returns once the generation is above `seen`, or at `timeout` on
    /// `clock`, or when the task is cancelled; returns the generation then.
    ///
    /// The timeouts share one timer task, armed again only for a deadline
    /// earlier than the one it sleeps until: a sleep cannot be taken back,
    /// so a timer per wait (the poller and the event hub wait again after
    /// every commit) would leave thousands of sleeps pending a minute after
    /// a busy spell, each waking the process when it runs out.
    public func wait(after seen: UInt64, timeout: Duration, clock: any BillingClock) async -> UInt64 {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        let deadlineMs = clock.nowMs(plus: timeout)
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<UInt64, Never>) in
                let (current, arm) = state.withLock { state -> (UInt64?, UInt64?) in
                    if state.generation > seen || Task.isCancelled { return (state.generation, nil) }
                    state.waiters[id] = Waiter(continuation: continuation, deadlineMs: deadlineMs)
                    if let armed = state.armedDeadlineMs, armed <= deadlineMs { return (nil, nil) }
                    state.armedDeadlineMs = deadlineMs
                    state.armedTimer += 1
                    return (nil, state.armedTimer)
                }
                if let current { continuation.resume(returning: current) }
                if let arm { startTimer(arm, until: deadlineMs, clock: clock) }
            }
        } onCancel: {
            self.release([id])
        }
    }

    /// Sleeps until `deadlineMs`, releases the waiters whose time has come,
    /// and sleeps on to the next deadline while it is still the armed timer.
    private func startTimer(_ timer: UInt64, until deadlineMs: Int64, clock: any BillingClock) {
        Task {
            var deadline = deadlineMs
            while true {
                try? await clock.sleep(for: .milliseconds(max(0, deadline - clock.nowMs)))
                let now = clock.nowMs
                let (due, next) = state.withLock { state -> ([UInt64], Int64?) in
                    let due = state.waiters.filter { $0.value.deadlineMs <= now }.map(\.key)
                    // A later timer took over (an earlier deadline came): it
                    // sleeps for the rest.
                    guard state.armedTimer == timer else { return (due, nil) }
                    let next = state.waiters.values.filter { $0.deadlineMs > now }.map(\.deadlineMs).min()
                    state.armedDeadlineMs = next
                    return (due, next)
                }
                release(due)
                guard let next else { return }
                deadline = next
            }
        }
    }

    private func release(_ ids: [UInt64]) {
        let (waiters, generation) = state.withLock { state in
            (ids.compactMap { state.waiters.removeValue(forKey: $0) }, state.generation)
        }
        for waiter in waiters { waiter.continuation.resume(returning: generation) }
    }
}
