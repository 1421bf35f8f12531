internal import BillingAPI
internal import BillingCore
internal import BillingMessages
internal import BillingRPC

/// Follows the event log for a watcher: every committed event after the
/// watcher's cursor, in sequence order, then each new one as it commits.
///
/// Behind, a watcher reads the database in batches, so it costs one batch of
/// memory however far behind it is; a watcher more than `maxLag` events
/// behind is ended RESOURCE_EXHAUSTED and resumes after the last sequence it
/// saw. Caught up, it hands its stream to the `EventHub`, which writes each
/// new event of the watcher's account into it without waking the watcher's
/// task, and wakes it only when the stream has no room (then it reads the
/// database again from where the stream got to). When billingd stops, every
/// watch ends at once with UNAVAILABLE and the sequence to resume after.
///
/// A watch of one account counts in that account's own sequence
/// (`Event.accountSequence`), a watch of all accounts in the global one.
struct EventStreams: Sendable {
    let store: any BillingStore
    let hub: EventHub
    let maxLag: Int
    var metrics: BillingMetrics? = nil
    static let batch = 256

    func follow(
        accountID: String?,
        after sequence: UInt64,
        stream: ServerStreamWriter<BillingV1.PaymentEvent>
    ) async throws {
        var cursor = sequence
        while !Task.isCancelled {
            try await catchUp(accountID: accountID, cursor: &cursor, stream: stream)
            guard let subscription = hub.subscribe(accountID: accountID) else {
                if hub.isClosed { throw Self.shuttingDown(cursor) }
                try await Task.sleep(for: .milliseconds(20))  // the hub is starting
                continue
            }
            defer { hub.unsubscribe(subscription) }
            // Everything the hub handed out before the subscription is in the
            // database (it reads only committed events): read to the end once
            // more; the mailbox holds what came after, and repeats are skipped.
            // Then the hub writes each new event straight into the stream
            // until it has no room (or billingd stops, or the watch ends).
            try await catchUp(accountID: accountID, cursor: &cursor, stream: stream)
            let written = subscription.goLive(stream, after: cursor)
            if written > 0 { metrics?.eventsDelivered(written) }
            let end = await subscription.next()
            cursor = subscription.cursor ?? cursor
            if end.closed { throw Self.shuttingDown(cursor) }
            // Overflowed (fell behind): back to the database from the cursor.
        }
        throw RPCError(.cancelled, "watch cancelled")
    }

    private func position(_ event: Event, _ accountID: String?) -> UInt64 {
        accountID == nil ? event.sequence : event.accountSequence
    }

    /// Writes the database's events after `cursor` until a short batch.
    private func catchUp(
        accountID: String?,
        cursor: inout UInt64,
        stream: ServerStreamWriter<BillingV1.PaymentEvent>
    ) async throws {
        while !Task.isCancelled {
            let events = try await store.events(after: cursor, accountID: accountID, limit: Self.batch)
            if events.count == Self.batch {
                let backlog = try await store.eventBacklog(after: cursor, accountID: accountID)
                if backlog > maxLag {
                    throw RPCError(
                        .resourceExhausted,
                        "watcher is \(backlog) events behind (limit \(maxLag)); resume after sequence \(cursor)"
                    )
                }
            }
            for event in events {
                try await stream.write(BillingV1.PaymentEvent(event, global: accountID == nil))
                cursor = position(event, accountID)
            }
            if !events.isEmpty { metrics?.eventsDelivered(events.count) }
            if events.count < Self.batch { return }
        }
    }

    private static func shuttingDown(_ cursor: UInt64) -> RPCError {
        RPCError(
            .unavailable,
            "billingd is shutting down; resume after sequence \(cursor) (on another instance or after the restart)"
        )
    }
}
