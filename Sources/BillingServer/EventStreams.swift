internal import BillingAPI
internal import BillingCore
internal import BillingMessages
internal import BillingRPC

/// Follows the event log for a watcher: every committed event after the
/// watcher's cursor, in sequence order, then each new one as it commits.
///
/// Reads from the database in batches, so a watcher costs one batch of
/// memory however far behind it is; waits on the store's commit signal when
/// caught up. A watcher more than `maxLag` events behind is ended
/// RESOURCE_EXHAUSTED: it resumes after the last sequence it saw.
struct EventStreams: Sendable {
    let store: any BillingStore
    let maxLag: Int
    static let batch = 256

    func follow(accountID: String?, after sequence: UInt64, stream: ServerStreamWriter<BillingV1.PaymentEvent>) async throws {
        var cursor = sequence
        while !Task.isCancelled {
            let generation = store.commits.generation
            let events = try await store.events(after: cursor, accountID: accountID, limit: Self.batch)
            if events.isEmpty {
                // Caught up: wait for a commit (or 30 s, to notice a cancelled call).
                _ = await store.commits.wait(after: generation, timeout: .seconds(30))
                continue
            }
            if events.count == Self.batch {
                let backlog = try await store.eventBacklog(after: cursor, accountID: accountID)
                if backlog > maxLag {
                    throw RPCError(.resourceExhausted, "watcher is \(backlog) events behind (limit \(maxLag)); resume after sequence \(cursor)")
                }
            }
            for event in events {
                try await stream.write(BillingV1.PaymentEvent(event))
                cursor = event.sequence
            }
        }
        throw RPCError(.cancelled, "watch cancelled")
    }
}
