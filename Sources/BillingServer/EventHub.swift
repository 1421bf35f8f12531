internal import BillingAPI
internal import BillingCore
internal import BillingMessages
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

    /// One watcher's registration: the hub fills its mailbox, the watcher
    /// empties it with `next`.
    final class Subscription: Sendable {
        let id: UInt64
        let accountID: String?
        private struct Mailbox {
            var delivery = Delivery()
            var waiter: CheckedContinuation<Void, Never>?
        }
        private let mailbox = Mutex(Mailbox())

        fileprivate init(id: UInt64, accountID: String?) {
            self.id = id
            self.accountID = accountID
        }

        /// Adds events in order; returns the watcher to wake, if it waits.
        fileprivate func put(_ events: [Published]) -> CheckedContinuation<Void, Never>? {
            mailbox.withLock { mailbox in
                if !mailbox.delivery.overflowed {
                    if mailbox.delivery.events.count + events.count > EventHub.mailboxLimit {
                        mailbox.delivery.events = []
                        mailbox.delivery.overflowed = true
                    } else {
                        mailbox.delivery.events.append(contentsOf: events)
                    }
                }
                defer { mailbox.waiter = nil }
                return mailbox.waiter
            }
        }

        /// The watcher cannot be given an event in memory: it reads the database.
        fileprivate func overflow() -> CheckedContinuation<Void, Never>? {
            mailbox.withLock { mailbox in
                mailbox.delivery.events = []
                mailbox.delivery.overflowed = true
                defer { mailbox.waiter = nil }
                return mailbox.waiter
            }
        }

        fileprivate func close() -> CheckedContinuation<Void, Never>? {
            mailbox.withLock { mailbox in
                mailbox.delivery.closed = true
                defer { mailbox.waiter = nil }
                return mailbox.waiter
            }
        }

        /// The next delivery, waiting for one, or until the task is cancelled
        /// (then it may be empty). No timer: the hub, a shutdown or the
        /// watch's cancellation wakes it.
        func next() async -> Delivery {
            if let ready = take() { return ready }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let ready = mailbox.withLock { mailbox -> Bool in
                        if Task.isCancelled || !mailbox.delivery.isEmpty { return true }
                        mailbox.waiter = continuation
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
            mailbox.withLock { mailbox in
                guard !mailbox.delivery.isEmpty else { return nil }
                defer { mailbox.delivery = Delivery(closed: mailbox.delivery.closed) }
                return mailbox.delivery
            }
        }

        fileprivate func wake() {
            let waiter = mailbox.withLock { mailbox in
                defer { mailbox.waiter = nil }
                return mailbox.waiter
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
    private let index = Mutex(Index())
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
                if let waiter = published.map({ subscription.put($0) }) ?? subscription.overflow() {
                    waiters.append(waiter)
                }
            }
            placed += events.count * subscriptions.count
        }
        for (account, subscriptions) in watchers { hand(byAccount[account] ?? [], global: false, to: subscriptions) }
        hand(events, global: true, to: everything)
        delivered.add(placed, ordering: .relaxed)
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
