internal import BillingCore
internal import GRDB
internal import Synchronization

/// The one way the store writes: write transactions queued by any number of
/// callers are run together, each in a savepoint of one SQLite transaction,
/// and committed with one fsync; every caller is answered only after that
/// commit is durable (group commit).
///
/// A caller whose work throws sees its own savepoint rolled back and gets
/// its error; the others in the batch are unaffected. Work runs in the order
/// it was queued, on the pool's one writer connection, so each sees the
/// writes of those before it exactly as if each had committed alone: the
/// event sequence stays gap-free and every compare-and-set holds. If the
/// commit itself fails, every caller of the batch gets the error and none of
/// its writes is kept. While a batch commits, new work queues for the next.
final class GroupCommit: Sendable {
    /// At most this many callers share one commit: enough to amortise the
    /// fsync, few enough that one batch stays short.
    static let maxBatch = 256

    private struct Job: Sendable {
        let body: @Sendable (Database) throws -> any Sendable
        let continuation: CheckedContinuation<any Sendable, any Error>
    }

    private struct State {
        var queue: [Job] = []
        var draining = false
    }

    private let pool: DatabasePool
    private let state = Mutex(State())
    /// Called once per committed batch, before its callers are answered.
    private let committed: @Sendable () -> Void

    init(pool: DatabasePool, committed: @escaping @Sendable () -> Void) {
        self.pool = pool
        self.committed = committed
    }

    /// Runs `body` in the next batch; returns once its batch is committed.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
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
            let batch = state.withLock { state -> [Job] in
                let batch = Array(state.queue.prefix(Self.maxBatch))
                state.queue.removeFirst(batch.count)
                if batch.isEmpty { state.draining = false }
                return batch
            }
            if batch.isEmpty { return }
            let bodies = batch.map(\.body)
            do {
                let results = try await pool.writeWithoutTransaction { db in
                    var results: [Result<any Sendable, any Error>] = []
                    results.reserveCapacity(bodies.count)
                    try db.inTransaction(.immediate) {
                        for body in bodies {
                            var result: Result<any Sendable, any Error> = .failure(CancellationError())
                            do {
                                try db.inSavepoint {
                                    result = .success(try body(db))
                                    return .commit
                                }
                            } catch {
                                result = .failure(error)
                                // An error that ended the whole transaction (SQLite
                                // rolls back on some I/O errors) fails the batch.
                                guard db.isInsideTransaction else { throw error }
                            }
                            results.append(result)
                        }
                        return .commit
                    }
                    return results
                }
                committed()
                for (job, result) in zip(batch, results) { job.continuation.resume(with: result) }
            } catch {
                for job in batch { job.continuation.resume(throwing: error) }
            }
        }
    }
}
