internal import BillingCore
internal import Synchronization

/// One reader of the event log that fans new events out to the watchers they
/// concern, so that a write costs the same however many watchers there are:
/// a commit wakes the hub alone; the hub reads what was committed once and
/// hands each event to the watchers of its account (and the watchers of all
/// accounts). A watcher of another account is never woken.
///
/// The event table stays the truth: a watcher reads from the database until
/// it is caught up, then `subscribe`s and reads the database to its end once
/// more (everything the hub handed out before is committed, so it is there);
/// from then on its mailbox holds every later event of its account, in order. A mailbox that overflows (a
/// watcher that does not keep up) is dropped and the watcher goes back to
/// reading the database from its cursor, so a slow watcher never holds more
/// than `mailboxLimit` events nor slows the hub or anyone else.
///
/// Thread-safe: state under one mutex; `run` is the only reader of the log.
final class EventHub: Sendable {
    /// A watcher's events beyond this are read from the database instead:
    /// 1,024 events are a few hundred KiB, and only a watcher that fell
    /// behind fills its mailbox.
    static let mailboxLimit = 1024
    /// Events read per database query by the hub.
    static let batch = 1024

    struct Delivery: Sendable {
        /// Events of the subscription's account, after the position it subscribed at.
        var events: [Event] = []
        /// The mailbox overflowed: read the database from your cursor.
        var overflowed = false
        /// The hub stopped (shutdown): end the watch.
        var closed = false
    }

    private struct Subscriber {
        var accountID: String?
        var mailbox = Delivery()
        var waiter: CheckedContinuation<Void, Never>?
    }

    private struct State {
        var started = false
        var closed = false
        var nextID: UInt64 = 0
        var subscribers: [UInt64: Subscriber] = [:]
        /// Subscriber ids by account; nil key = watchers of every account.
        var byAccount: [String?: Set<UInt64>] = [:]
    }

    private let store: any BillingStore
    private let clock: any BillingClock
    private let state = Mutex(State())
    /// Events placed in mailboxes, and watchers woken, since start (metrics, tests).
    let delivered = Atomic<Int>(0)
    let wakeups = Atomic<Int>(0)

    init(store: any BillingStore, clock: any BillingClock) {
        self.store = store
        self.clock = clock
    }

    /// Reads the log as it grows until cancelled, then ends every watch.
    func run() async {
        var cursor = (try? await store.latestSequence()) ?? 0
        state.withLock { $0.started = true }
        while !Task.isCancelled {
            let generation = store.commits.generation
            let events: [Event]
            do {
                events = try await store.events(after: cursor, accountID: nil, limit: Self.batch)
            } catch {
                try? await clock.sleep(for: .milliseconds(200))
                continue
            }
            if events.isEmpty {
                _ = await store.commits.wait(after: generation, timeout: .seconds(30), clock: clock)
                continue
            }
            cursor = events[events.count - 1].sequence
            dispatch(events)
        }
        close()
    }

    private func dispatch(_ events: [Event]) {
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            var touched: Set<UInt64> = []
            for event in events {
                for id in state.byAccount[event.accountID] ?? [] {
                    deliver(event, to: id, &state)
                    touched.insert(id)
                }
                for id in state.byAccount[nil] ?? [] {
                    deliver(event, to: id, &state)
                    touched.insert(id)
                }
            }
            return touched.compactMap { id in
                let waiter = state.subscribers[id]?.waiter
                state.subscribers[id]?.waiter = nil
                return waiter
            }
        }
        wakeups.add(woken.count, ordering: .relaxed)
        for waiter in woken { waiter.resume() }
    }

    private func deliver(_ event: Event, to id: UInt64, _ state: inout State) {
        delivered.add(1, ordering: .relaxed)
        guard var subscriber = state.subscribers[id], !subscriber.mailbox.overflowed else { return }
        if subscriber.mailbox.events.count == Self.mailboxLimit {
            subscriber.mailbox = Delivery(events: [], overflowed: true)
        } else {
            subscriber.mailbox.events.append(event)
        }
        state.subscribers[id] = subscriber
    }

    private func close() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.closed = true
            var waiters: [CheckedContinuation<Void, Never>] = []
            for id in state.subscribers.keys {
                state.subscribers[id]?.mailbox.closed = true
                if let waiter = state.subscribers[id]?.waiter { waiters.append(waiter) }
                state.subscribers[id]?.waiter = nil
            }
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Registers a watcher of `accountID` (nil: every account); it then reads
    /// the database to its end once more and takes the rest from `next`.
    /// nil before the hub runs or after it stopped.
    func subscribe(accountID: String?) -> UInt64? {
        state.withLock { state in
            guard state.started, !state.closed else { return nil }
            state.nextID += 1
            let id = state.nextID
            state.subscribers[id] = Subscriber(accountID: accountID)
            state.byAccount[accountID, default: []].insert(id)
            return id
        }
    }

    func unsubscribe(_ id: UInt64) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let subscriber = state.subscribers.removeValue(forKey: id) else { return nil }
            state.byAccount[subscriber.accountID]?.remove(id)
            if state.byAccount[subscriber.accountID]?.isEmpty == true { state.byAccount[subscriber.accountID] = nil }
            return subscriber.waiter
        }
        waiter?.resume()
    }

    /// The subscription's next delivery, waiting for one (or at most
    /// `timeout`, or until the task is cancelled; then it may be empty).
    func next(_ id: UInt64, timeout: Duration) async -> Delivery {
        if let ready = take(id) { return ready }
        let timer = Task {
            try? await self.clock.sleep(for: timeout)
            self.wake(id)
        }
        defer { timer.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    guard let subscriber = state.subscribers[id] else { return true }
                    if Task.isCancelled || !subscriber.mailbox.events.isEmpty || subscriber.mailbox.overflowed
                        || subscriber.mailbox.closed
                    {
                        return true
                    }
                    state.subscribers[id]?.waiter = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            self.wake(id)
        }
        return take(id) ?? Delivery()
    }

    /// Takes the mailbox if it holds anything to act on.
    private func take(_ id: UInt64) -> Delivery? {
        state.withLock { state in
            guard let subscriber = state.subscribers[id] else { return Delivery(closed: true) }
            let mailbox = subscriber.mailbox
            guard !mailbox.events.isEmpty || mailbox.overflowed || mailbox.closed else { return nil }
            state.subscribers[id]?.mailbox = Delivery(closed: mailbox.closed)
            return mailbox
        }
    }

    private func wake(_ id: UInt64) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            let waiter = state.subscribers[id]?.waiter
            state.subscribers[id]?.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// The hub stopped: no watch can follow the log any more.
    var isClosed: Bool {
        state.withLock { $0.closed }
    }

    /// Watchers registered now (for tests and metrics).
    var subscriberCount: Int {
        state.withLock { $0.subscribers.count }
    }
}
