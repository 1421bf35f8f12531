internal import Synchronization

/// Tells waiters that the store committed something: event streams and the
/// poller sleep on it instead of polling the database.
///
/// A generation counter, bumped after every commit. A waiter reads it before
/// looking at the database and then waits for a higher one, so a commit that
/// lands between the look and the wait is never missed. Thread-safe.
public final class CommitSignal: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<UInt64, Never>] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    public var generation: UInt64 {
        state.withLock { $0.generation }
    }

    /// Called by the store after each commit.
    public func committed() {
        let (generation, waiters) = state.withLock { state -> (UInt64, [CheckedContinuation<UInt64, Never>]) in
            state.generation += 1
            let waiting = Array(state.waiters.values)
            state.waiters.removeAll()
            return (state.generation, waiting)
        }
        for waiter in waiters { waiter.resume(returning: generation) }
    }

    /// Returns once the generation is above `seen`, or at `timeout` on
    /// `clock`, or when the task is cancelled; returns the generation then.
    public func wait(after seen: UInt64, timeout: Duration, clock: any BillingClock) async -> UInt64 {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        let timer = Task {
            try? await clock.sleep(for: timeout)
            self.release(id)
        }
        defer { timer.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<UInt64, Never>) in
                let current = state.withLock { state -> UInt64? in
                    if state.generation > seen || Task.isCancelled { return state.generation }
                    state.waiters[id] = continuation
                    return nil
                }
                if let current { continuation.resume(returning: current) }
            }
        } onCancel: {
            self.release(id)
        }
    }

    private func release(_ id: UInt64) {
        let (waiter, generation) = state.withLock { state in (state.waiters.removeValue(forKey: id), state.generation) }
        waiter?.resume(returning: generation)
    }
}
