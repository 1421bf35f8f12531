internal import BillingCore
internal import Foundation
internal import Logging
internal import Synchronization

/// Checks New payments at their payment systems: the seed's "pending
/// payments are checked every minute".
///
/// The poller decides only *when*: which payments are due (claimed with a
/// lease), how often, how far to back off after a failure. What a check is
/// and does is `PaymentFlows.check`, the same for a refresh or a webhook.
///
/// State lives in the database (next check time, attempts, a lease), not in
/// memory: a restarted billingd picks up where it stopped, and two instances
/// never check one payment at once. It sleeps until the next payment is due
/// or a commit may have made one due, never on a fixed tick when idle.
struct Poller: Sendable {
    struct Settings: Sendable {
        var interval: Duration
        var concurrency: Int
        var lease: Duration
        var maxBackoff: Duration
        /// How long a method may stay Pending after its payment was Paid
        /// (waiting for a PayPal vault id sent by webhook) before it ends Failed.
        var pendingMethodTimeout: Duration = .seconds(86_400)
        /// A failed automatic renewal is tried again after this long.
        var autoRenewalRetry: Duration = .seconds(86_400)
        /// Checks a second at most, per payment system (absent: no limit),
        /// so that the poller stays inside a system's rate limits however
        /// many payments are due; what waits is checked a little later.
        var checksPerSecond: [PaymentSystem: Double] = [:]
    }

    let store: any BillingStore
    let flows: PaymentFlows
    let clock: any BillingClock
    let settings: Settings
    let owner: String
    let logger: Logger
    let metrics: BillingMetrics?
    let rates: CheckRates

    init(
        store: any BillingStore,
        flows: PaymentFlows,
        clock: any BillingClock,
        settings: Settings,
        logger: Logger,
        metrics: BillingMetrics? = nil
    ) {
        self.store = store
        self.flows = flows
        self.clock = clock
        self.settings = settings
        self.logger = logger
        self.metrics = metrics
        rates = CheckRates(settings.checksPerSecond, clock: clock)
        owner = "poller-\(ProcessInfo.processInfo.processIdentifier)-\(IDs.make("p").suffix(8))"
    }

    /// Runs until the task is cancelled. What it changes is audited as the
    /// poller's.
    func run() async {
        await Audit.$actor.withValue(AuditActor(who: "poller", via: "poll")) { await cycles() }
    }

    private func cycles() async {
        logger.info("poller started", metadata: ["interval": "\(settings.interval)", "owner": "\(owner)"])
        var lastSweepMs: Int64 = 0
        while !Task.isCancelled {
            do {
                // Once an interval: saved methods whose payment system never sent them end Failed.
                if clock.nowMs - lastSweepMs >= settings.interval.milliseconds {
                    lastSweepMs = clock.nowMs
                    let failed = try await store.failStalePendingMethods(
                        paidBeforeMs: lastSweepMs - settings.pendingMethodTimeout.milliseconds
                    )
                    if failed > 0 {
                        logger.notice("pending saved methods ended Failed", metadata: ["count": "\(failed)"])
                    }
                    try await autoRenewals()
                }
                let claimed = try await store.claimDuePayments(
                    owner: owner,
                    limit: min(1000, settings.concurrency * 4),
                    lease: settings.lease
                )
                if !claimed.isEmpty {
                    // A shutdown does not cancel the checks already running:
                    // one stopped halfway would leave its answer unrecorded
                    // and its lease held; each ends within its payment
                    // system's timeout. It only stops new ones from starting
                    // (their claims are given back for the next poller).
                    let stopping = Stopping()
                    await withTaskCancellationHandler {
                        await Task { await self.check(claimed, unless: stopping, claimingMore: true) }.value
                    } onCancel: {
                        stopping.flag.store(true, ordering: .relaxed)
                    }
                    continue
                }
                // Read the generation before looking, so a commit after the
                // look still wakes us.
                let generation = store.commits.generation
                let due = try await store.nextCheckDue()
                let wait = due.map { Duration.milliseconds(max(0, $0 - clock.nowMs)) } ?? settings.interval
                if wait > .zero {
                    _ = await store.commits.wait(after: generation, timeout: min(wait, settings.interval), clock: clock)
                }
            } catch {
                // Stopping cancels a cycle mid-read: that is not a failure.
                if Task.isCancelled { break }
                logger.error("poller cycle failed", metadata: ["error": "\(error)"])
                try? await clock.sleep(for: .seconds(1))
            }
        }
        logger.info("poller stopped")
    }

    /// Once an interval: every service whose automatic renewal is due gets
    /// one attempt (`AutoRenewals`); a charge it records is started at once,
    /// as a person's would be (and checked by the poller like any payment).
    func autoRenewals() async throws {
        // At most 1000 a sweep: one that keeps failing must not hold the poller.
        for _ in 0..<10 where !Task.isCancelled {
            let due = try await store.dueAutoRenewals(limit: 100)
            for serviceID in due {
                if Task.isCancelled { return }
                do {
                    let attempt = try await store.attemptAutoRenewal(
                        serviceID: serviceID,
                        retry: settings.autoRenewalRetry
                    )
                    switch attempt {
                    case .charging(let order, let payment):
                        logger.info(
                            "automatic renewal charging",
                            metadata: ["service": "\(serviceID)", "order": "\(order.id)", "payment": "\(payment.id)"]
                        )
                        // A charge that fails to start is checked by the poller like any other.
                        _ = try? await flows.start(payment)
                    case .renewed(let order):
                        logger.info("automatic renewal", metadata: ["service": "\(serviceID)", "order": "\(order.id)"])
                    case .failed(let why):
                        logger.notice(
                            "automatic renewal failed",
                            metadata: ["service": "\(serviceID)", "why": "\(why)"]
                        )
                    case .notDue:
                        break
                    }
                } catch {
                    logger.error(
                        "automatic renewal attempt failed",
                        metadata: ["service": "\(serviceID)", "error": "\(error)"]
                    )
                }
            }
            // Each attempt moved its service out of the due list (renewed, or retried later).
            if due.count < 100 { return }
        }
    }

    /// Claimed payments checked, at most `concurrency` at a time and each
    /// payment system's checks at most at its rate; none started once
    /// `stopping` is set. With `claimingMore`, more due payments are claimed
    /// while these run, whenever fewer than `concurrency` could start, until
    /// a claim finds none: the checks run back to back instead of each batch
    /// waiting for its slowest check before the next claim.
    ///
    /// A system at its rate holds back no other: its payments wait in place
    /// while others start, it is left out of further claims while it has
    /// payments waiting, and a timer wakes the loop when its next check may
    /// start even while other checks run. A claim kept waiting for most of
    /// its lease is given back instead of checked (by then its lease could
    /// lapse and another poller take it): it is claimed again when due.
    func check(_ payments: [Payment], unless stopping: Stopping? = nil, claimingMore: Bool = false) async {
        let leaseMs = settings.lease.milliseconds
        let claimLimit = min(1000, settings.concurrency * 4)
        await withTaskGroup(of: Bool.self) { group in  // true: a check ended; false: the timer
            var waiting = payments.map { (payment: $0, claimedAtMs: clock.nowMs) }
            var running = 0
            var timerSet = false
            var claiming = claimingMore
            // The held systems when a claim that left them out found nothing:
            // no need to ask again until that set changes.
            var foundNothingExcluding: Set<PaymentSystem>?
            while stopping?.flag.load(ordering: .relaxed) != true {
                // Start what may start, in claim order.
                var held: [(payment: Payment, claimedAtMs: Int64)] = []
                var stale: [String] = []
                var index = 0
                let now = clock.nowMs
                while index < waiting.count, running < settings.concurrency {
                    let (payment, claimedAtMs) = waiting[index]
                    index += 1
                    guard now - claimedAtMs < leaseMs * 3 / 4 else {
                        stale.append(payment.id)
                        continue
                    }
                    guard rates.take(payment.system) else {
                        held.append((payment, claimedAtMs))
                        continue
                    }
                    group.addTask {
                        await self.check(payment)
                        return true
                    }
                    running += 1
                }
                waiting = held + waiting[index...]
                if !stale.isEmpty { await giveBack(stale) }
                let startable = waiting.count - held.count
                let heldSystems = Set(held.compactMap(\.payment.system))
                if claiming, startable < settings.concurrency, foundNothingExcluding != heldSystems {
                    do {
                        let known = Set(waiting.map(\.payment.id))
                        let more = try await store.claimDuePayments(
                            owner: owner,
                            limit: max(1, claimLimit - startable),
                            lease: settings.lease,
                            excluding: heldSystems
                        ).filter { !known.contains($0.id) }
                        if more.isEmpty {
                            // Nothing else is due: done claiming once no system is left out.
                            if heldSystems.isEmpty { claiming = false } else { foundNothingExcluding = heldSystems }
                        } else {
                            foundNothingExcluding = nil
                            let now = clock.nowMs
                            waiting += more.map { ($0, now) }
                            continue
                        }
                    } catch {
                        logger.error("poller claim failed", metadata: ["error": "\(error)"])
                        claiming = false
                    }
                }
                if running == 0, waiting.isEmpty { break }
                if !waiting.isEmpty, !timerSet, running == 0 || !held.isEmpty {
                    // Payments wait for their system's rate: wake when the
                    // first may go (a second at most between looks at `stopping`).
                    timerSet = true
                    let wait = min(.seconds(1), rates.wait(for: waiting.map(\.payment.system)))
                    group.addTask {
                        try? await self.clock.sleep(for: wait)
                        return false
                    }
                }
                if let ended = await group.next() {
                    if ended { running -= 1 } else { timerSet = false }
                }
            }
            if !waiting.isEmpty {
                // Stopping: claims not started are given back rather than
                // left to lapse, so the next poller need not wait for them.
                await giveBack(waiting.map(\.payment.id))
            }
        }
    }

    private func giveBack(_ paymentIDs: [String]) async {
        do {
            try await store.releaseClaims(paymentIDs: paymentIDs, owner: owner)
        } catch {
            logger.warning("poller could not give back its claims", metadata: ["error": "\(error)"])
        }
    }

    /// One claimed payment checked; still New, it is due again after an
    /// interval, or after a backoff that doubles with its failed attempts.
    func check(_ claimed: Payment) async {
        let now = clock.nowMs
        var asked = false
        // When each check runs, on the machine's monotonic clock: several
        // instances' logs show no payment checked by two at once.
        logger.debug(
            "payment check started",
            metadata: [
                "payment": "\(claimed.id)", "owner": "\(owner)", "monotonic_ns": "\(Self.monotonicNanoseconds())",
            ]
        )
        // The claim is renewed while the check runs (every third of the
        // lease): a slow payment system or a loaded machine never lets
        // another instance's poller take over a payment being checked.
        let renewal = Task { [store, clock, owner, lease = settings.lease, logger] in
            while !Task.isCancelled {
                try? await clock.sleep(for: lease / 3)
                if Task.isCancelled { return }
                do {
                    if try await !store.renewClaim(paymentID: claimed.id, owner: owner, lease: lease) { return }
                } catch {
                    logger.warning(
                        "could not renew a claim",
                        metadata: ["payment": "\(claimed.id)", "error": "\(error)"]
                    )
                }
            }
        }
        let outcome: Result<Payment, any Error>
        do {
            outcome = .success(try await flows.check(claimed, .poll))
        } catch {
            outcome = .failure(error)
        }
        // The check is over before its claim is given back (below): another
        // poller may take the payment from then on.
        renewal.cancel()
        logger.debug(
            "payment check ended",
            metadata: [
                "payment": "\(claimed.id)", "owner": "\(owner)", "monotonic_ns": "\(Self.monotonicNanoseconds())",
            ]
        )
        do {
            let after = try outcome.get()
            asked = true
            metrics?.pollerChecked(after.status.rawValue)
            guard after.status == .new else { return }
            // Invoices are never due: only an operator ends them.
            try await store.recordCheck(
                paymentID: after.id,
                owner: owner,
                nextCheckAtMs: after.system == nil ? nil : now + settings.interval.milliseconds
            )
        } catch {
            if !asked { metrics?.pollerChecked("failed") }
            // The payment stays New; try again later, backing off.
            let backoff = min(
                settings.maxBackoff.milliseconds,
                settings.interval.milliseconds << Int64(min(claimed.checkAttempts, 12))
            )
            logger.warning(
                "payment check failed",
                metadata: ["payment": "\(claimed.id)", "error": "\(error)", "retry_in_ms": "\(backoff)"]
            )
            try? await store.recordCheck(paymentID: claimed.id, owner: owner, nextCheckAtMs: now + backoff)
        }
    }

    /// CLOCK_MONOTONIC, shared by every process of the machine.
    static func monotonicNanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}

/// A token bucket per payment system: `rate` checks a second, at most a
/// second's worth at once. Thread-safe.
final class CheckRates: Sendable {
    private struct Bucket {
        let rate: Double
        var tokens: Double
        var updatedMs: Int64
    }

    private let buckets: Mutex<[PaymentSystem: Bucket]>
    private let clock: any BillingClock

    init(_ rates: [PaymentSystem: Double], clock: any BillingClock) {
        let now = clock.nowMs
        buckets = Mutex(
            rates.filter { $0.value > 0 }.mapValues { Bucket(rate: $0, tokens: max(1, $0), updatedMs: now) }
        )
        self.clock = clock
    }

    /// True (and a check counted) if `system` may be asked now; invoices
    /// (no system) and systems without a rate always may.
    func take(_ system: PaymentSystem?) -> Bool {
        guard let system else { return true }
        let now = clock.nowMs
        return buckets.withLock { buckets in
            guard var bucket = buckets[system] else { return true }
            bucket.tokens = min(
                max(1, bucket.rate),
                bucket.tokens + Double(max(0, now - bucket.updatedMs)) / 1000 * bucket.rate
            )
            bucket.updatedMs = now
            defer { buckets[system] = bucket }
            guard bucket.tokens >= 1 else { return false }
            bucket.tokens -= 1
            return true
        }
    }

    /// How long until the first of `systems` may be asked (at least 1 ms).
    func wait(for systems: [PaymentSystem?]) -> Duration {
        let now = clock.nowMs
        let waits = buckets.withLock { buckets in
            systems.compactMap { system -> Double? in
                guard let system, let bucket = buckets[system] else { return 0 }
                let tokens = bucket.tokens + Double(max(0, now - bucket.updatedMs)) / 1000 * bucket.rate
                return max(0, (1 - tokens) / bucket.rate)
            }
        }
        // At most a minute: a tiny rate must not overflow the conversion.
        return .milliseconds(max(1, Int64((min(60, waits.min() ?? 0) * 1000).rounded(.up))))
    }
}

/// Set when billingd stops during a cycle's checks.
final class Stopping: Sendable {
    let flag = Atomic<Bool>(false)
}
