internal import BillingCore
internal import Synchronization

/// The one way a store writes: write transactions queued by any number of
/// callers are run together, each in a savepoint of one transaction, and
/// committed once (one fsync); every caller is answered only after that
/// commit is durable (group commit). The engine runs a batch (`Batch`):
/// SQLite on its one writer connection, PostgreSQL on its writer connection
/// under the store's write lock.
///
/// A caller whose work throws sees its own savepoint rolled back and gets
/// its error; the others in the batch are unaffected. Work runs in the order
/// it was queued, so each sees the writes of those before it exactly as if
/// each had committed alone: the event sequence stays gap-free and every
/// compare-and-set holds. If the commit itself fails, every caller of the
/// batch gets the error and none of its writes is kept. While a batch
/// commits, new work queues for the next.
package final class GroupCommit: Sendable {
    /// At most this many callers share one commit: enough to amortise the
    /// fsync, few enough that one batch stays short.
    package static let maxBatch = 256

    package typealias Work = @Sendable (any SQLSession) throws -> any Sendable
    /// Runs the works in one transaction, each in a savepoint; returns each
    /// one's result in order, or throws when the transaction failed whole.
    package typealias Batch = @Sendable ([Work]) async throws -> [Result<any Sendable, any Error>]

    private struct Job: Sendable {
        let body: Work
        let continuation: CheckedContinuation<any Sendable, any Error>
    }

    private struct State {
        var queue: [Job] = []
        var draining = false
    }

    private let batch: Batch
    private let state = Mutex(State())
    /// Called once per committed batch, before its callers are answered.
    private let committed: @Sendable () -> Void

    package init(batch: @escaping Batch, committed: @escaping @Sendable () -> Void) {
        self.batch = batch
        self.committed = committed
    }

    /// Runs `body` in the next batch; returns once its batch is committed.
    package func write<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        let value = try await withCheckedThrowingContinuation {
            (continuation: CheckedContinuation<any Sendable, any Error>) in
            let start = state.withLock { state -> Bool in
                state.queue.append(Job(body: { try body($0) }, continuation: continuation))
                guard !state.draining else { return false }
                state.draining = true
                return true
            }
            if start { Task { await self.drain() } }
        }
        guard let typed = value as? T else { preconditionFailure("a batch returned another type than its caller's") }
        return typed
    }

    /// Commits batches until the queue is empty.
    private func drain() async {
        while true {
            let jobs = state.withLock { state -> [Job] in
                let jobs = Array(state.queue.prefix(Self.maxBatch))
                state.queue.removeFirst(jobs.count)
                if jobs.isEmpty { state.draining = false }
                return jobs
            }
            if jobs.isEmpty { return }
            do {
                let results = try await batch(jobs.map(\.body))
                committed()
                for (job, result) in zip(jobs, results) { job.continuation.resume(with: result) }
            } catch {
                for job in jobs { job.continuation.resume(throwing: error) }
            }
        }
    }
}
