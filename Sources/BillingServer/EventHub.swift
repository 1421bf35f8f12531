internal import BillingAPI
internal import BillingCore
internal import BillingMessages
internal import BillingRPC
internal import Synchronization

/// One reader of the event log that fans new events out to the watchers they
/// concern, so that a write costs the same however many watchers there are:
/// a commit wakes the hub alone; the hub reads what was committed once,
/// encodes each event once (per form: a watcher of one account counts in the
/// account's sequence, a watcher of all accounts in the global one) and hands
/// it to the mailboxes of its account's watchers and of the watchers of all
/// accounts. A watcher of another account is never woken.
///
/// The event table stays the truth: a watcher reads from the database until
/// it is caught up, then `subscribe`s and reads the database to its end once
/// more (everything the hub handed out before is committed, so it is there);
/// from then on its mailbox holds every later event of its account, in order.
/// A mailbox that overflows (a watcher that does not keep up) is emptied and
/// the watcher goes back to reading the database from its cursor, so a slow
/// watcher never holds more than `mailboxLimit` events nor slows the hub or
/// anyone else.
///
/// Thread-safe: the index of mailboxes under one mutex, each mailbox under
/// its own (the hub fills them without holding the index, so watchers taking
/// their events do not wait on each other); `run` is the only reader of the log.
final class EventHub: Sendable {
    /// A watcher's events beyond this are read from the database instead:
    /// 1,024 events are a few hundred KiB, and only a watcher that fell
    /// behind fills its mailbox.
    static let mailboxLimit = 1024
    /// Events read per database query by the hub.
    static let batch = 1024

    /// A committed event and its `PaymentEvent` message, encoded once for
    /// every watcher of its form.
    final class Published: Sendable {
        let event: Event
        let message: [UInt8]

        init(event: Event, message: [UInt8]) {
            self.event = event
            self.message = message
        }
    }

    struct Delivery: Sendable {
        /// Events of the subscription's account, after the position it subscribed at.
        var events: [Published] = []
        /// The mailbox overflowed: read the database from your cursor.
        var overflowed = false
        /// The hub stopped (shutdown): end the watch.
        var closed = false

        fileprivate var isEmpty: Bool { events.isEmpty && !overflowed && !closed }
    }

    /// One watcher's registration. While the watcher catches up from the
    /// database, the hub fills its mailbox; once caught up (`goLive`), the hub
    /// writes each event straight into the watcher's stream without waking
    /// its task, as long as the stream has room. A stream without room (a
    /// slow reader) overflows: the watcher is woken and reads the database
    /// from the last event the stream took.
    final class Subscription: Sendable {
        let id: UInt64
        let accountID: String?
        private struct Live {
            let stream: ServerStreamWriter<BillingV1.PaymentEvent>
            /// The position of the last event the stream took.
            var cursor: UInt64
        }
        private struct State {
            var delivery = Delivery()
            var live: Live?
            var waiter: CheckedContinuation<Void, Never>?

            mutating func overflow() -> CheckedContinuation<Void, Never>? {
                delivery.events = []
                delivery.overflowed = true
                defer { waiter = nil }
                return waiter
            }
        }
        private let state = Mutex(State())

        fileprivate init(id: UInt64, accountID: String?) {
            self.id = id
            self.accountID = accountID
        }

        /// Where `event` is in this watcher's sequence.
        private func position(_ event: Event) -> UInt64 {
            accountID == nil ? event.sequence : event.accountSequence
        }

        /// Adds events in order to the mailbox, or writes them to the live
        /// stream; returns how many the stream took and the watcher to wake,
        /// if any.
        fileprivate func put(_ events: [Published]) -> (taken: Int, wake: CheckedContinuation<Void, Never>?) {
            state.withLock { state in
                guard !state.delivery.overflowed else { return (0, nil) }
                guard var live = state.live else {
                    if state.delivery.events.count + events.count > EventHub.mailboxLimit {
                        return (0, state.overflow())
                    }
                    state.delivery.events.append(contentsOf: events)
                    defer { state.waiter = nil }
                    return (0, state.waiter)
                }
                var taken = 0
                defer { state.live = live }
                for published in events where position(published.event) > live.cursor {
                    guard live.stream.offer(serialized: published.message) else { return (taken, state.overflow()) }
                    live.cursor = position(published.event)
                    taken += 1
                }
                return (taken, nil)
            }
        }

        /// The watcher cannot be given an event in memory: it reads the database.
        fileprivate func overflow() -> CheckedContinuation<Void, Never>? {
            state.withLock { $0.overflow() }
        }

        fileprivate func close() -> CheckedContinuation<Void, Never>? {
            state.withLock { state in
                state.delivery.closed = true
                defer { state.waiter = nil }
                return state.waiter
            }
        }

        /// The watcher has written everything up to `cursor`: what the
        /// mailbox holds after it goes to `stream` now, and every later event
        /// as the hub reads it. Then `next` returns only when that ends
        /// (overflow, shutdown, cancellation); `cursor` says where it got to.
        /// Returns how many events it wrote.
        func goLive(_ stream: ServerStreamWriter<BillingV1.PaymentEvent>, after cursor: UInt64) -> Int {
            let (written, waiter) = state.withLock { state -> (Int, CheckedContinuation<Void, Never>?) in
                guard !state.delivery.overflowed, !state.delivery.closed else { return (0, nil) }
                var live = Live(stream: stream, cursor: cursor)
                var written = 0
                for published in state.delivery.events where position(published.event) > live.cursor {
                    guard stream.offer(serialized: published.message) else {
                        state.live = live
                        return (written, state.overflow())
                    }
                    live.cursor = position(published.event)
                    written += 1
                }
                state.delivery.events = []
                state.live = live
                return (written, nil)
            }
            waiter?.resume()
            return written
        }

        /// The position of the last event the live stream took (nil before `goLive`).
        var cursor: UInt64? {
            state.withLock { $0.live?.cursor }
        }

        /// The next delivery, waiting for one, or until the task is cancelled
        /// (then it may be empty). No timer: the hub, a shutdown or the
        /// watch's cancellation wakes it.
        func next() async -> Delivery {
            if let ready = take() { return ready }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let ready = state.withLock { state -> Bool in
                        if Task.isCancelled || !state.delivery.isEmpty { return true }
                        state.waiter = continuation
                        return false
                    }
                    if ready { continuation.resume() }
                }
            } onCancel: {
                self.wake()
            }
            return take() ?? Delivery()
        }

        /// Takes the mailbox if it holds anything to act on.
        private func take() -> Delivery? {
            state.withLock { state in
                guard !state.delivery.isEmpty else { return nil }
                defer {
                    state.delivery = Delivery(overflowed: state.delivery.overflowed, closed: state.delivery.closed)
                }
                return state.delivery
            }
        }

        fileprivate func wake() {
            let waiter = state.withLock { state in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }

    private struct Index {
        var started = false
        var closed = false
        var nextID: UInt64 = 0
        var count = 0
        /// Subscriptions by account; nil key = watchers of every account.
        var byAccount: [String?: [UInt64: Subscription]] = [:]
    }

    private let store: any BillingStore
    private let clock: any BillingClock
    private let metrics: BillingMetrics?
    private let index = Mutex(Index())
    /// Events placed in mailboxes or written to live streams, and watchers
    /// woken, since start (tests).
    let delivered = Atomic<Int>(0)
    let wakeups = Atomic<Int>(0)

    init(store: any BillingStore, clock: any BillingClock, metrics: BillingMetrics? = nil) {
        self.store = store
        self.clock = clock
        self.metrics = metrics
    }

    /// Reads the log as it grows until cancelled, then ends every watch.
    func run() async {
        var cursor = (try? await store.latestSequence()) ?? 0
        index.withLock { $0.started = true }
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

    /// Hands `events` (in sequence order) to the watchers of their accounts
    /// and of all accounts, each event encoded once per form.
    private func dispatch(_ events: [Event]) {
        var byAccount: [String: [Event]] = [:]
        for event in events { byAccount[event.accountID, default: []].append(event) }
        let (watchers, everything) = index.withLock { index in
            (
                byAccount.keys.compactMap { account in index.byAccount[account].map { (account, Array($0.values)) } },
                Array((index.byAccount[nil] ?? [:]).values)
            )
        }
        var waiters: [CheckedContinuation<Void, Never>] = []
        var placed = 0
        func hand(_ events: [Event], global: Bool, to subscriptions: [Subscription]) {
            guard !subscriptions.isEmpty else { return }
            let published = Self.publish(events, global: global)
            for subscription in subscriptions {
                guard let published else {
                    if let waiter = subscription.overflow() { waiters.append(waiter) }
                    continue
                }
                let (taken, waiter) = subscription.put(published)
                placed += taken
                if let waiter { waiters.append(waiter) }
            }
        }
        for (account, subscriptions) in watchers { hand(byAccount[account] ?? [], global: false, to: subscriptions) }
        hand(events, global: true, to: everything)
        delivered.add(placed, ordering: .relaxed)
        if placed > 0 { metrics?.eventsDelivered(placed) }
        wakeups.add(waiters.count, ordering: .relaxed)
        for waiter in waiters { waiter.resume() }
    }

    /// The events' messages; nil when one cannot be encoded (its watchers
    /// then read the database, where the failure is reported to them).
    private static func publish(_ events: [Event], global: Bool) -> [Published]? {
        var published: [Published] = []
        published.reserveCapacity(events.count)
        for event in events {
            guard let message = try? BillingV1.PaymentEvent(event, global: global).serializedBytes() else { return nil }
            published.append(Published(event: event, message: message))
        }
        return published
    }

    private func close() {
        let subscriptions = index.withLock { index in
            index.closed = true
            return index.byAccount.values.flatMap(\.values)
        }
        for waiter in subscriptions.compactMap({ $0.close() }) { waiter.resume() }
    }

    /// Registers a watcher of `accountID` (nil: every account); it then reads
    /// the database to its end once more and takes the rest from `next`.
    /// nil before the hub runs or after it stopped.
    func subscribe(accountID: String?) -> Subscription? {
        index.withLock { index in
            guard index.started, !index.closed else { return nil }
            index.nextID += 1
            let subscription = Subscription(id: index.nextID, accountID: accountID)
            index.byAccount[accountID, default: [:]][subscription.id] = subscription
            index.count += 1
            return subscription
        }
    }

    func unsubscribe(_ subscription: Subscription) {
        index.withLock { index in
            guard index.byAccount[subscription.accountID]?.removeValue(forKey: subscription.id) != nil else { return }
            index.count -= 1
            if index.byAccount[subscription.accountID]?.isEmpty == true {
                index.byAccount[subscription.accountID] = nil
            }
        }
        subscription.wake()
    }

    /// The hub stopped: no watch can follow the log any more.
    var isClosed: Bool {
        index.withLock { $0.closed }
    }

    /// Watchers registered now (for tests and metrics).
    var subscriberCount: Int {
        index.withLock { $0.count }
    }
}
