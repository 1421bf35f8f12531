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
    }

    let store: any BillingStore
    let flows: PaymentFlows
    let clock: any BillingClock
    let settings: Settings
    let owner: String
    let logger: Logger
    let metrics: BillingMetrics?

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
                }
                let claimed = try await store.claimDuePayments(
                    owner: owner,
                    limit: settings.concurrency * 4,
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

    /// Claimed payments checked, at most `concurrency` at a time; none
    /// started once `stopping` is set. With `claimingMore`, more due payments
    /// are claimed while these run, whenever fewer than `concurrency` wait to
    /// start, until a claim finds none: the checks run back to back instead
    /// of each batch waiting for its slowest check before the next claim.
    func check(_ payments: [Payment], unless stopping: Stopping? = nil, claimingMore: Bool = false) async {
        await withTaskGroup(of: Void.self) { group in
            var waiting = payments[...]
            var running = 0
            var claiming = claimingMore
            while stopping?.flag.load(ordering: .relaxed) != true {
                while running < settings.concurrency, let payment = waiting.popFirst() {
                    group.addTask { await self.check(payment) }
                    running += 1
                }
                if claiming, waiting.count < settings.concurrency {
                    do {
                        let more = try await store.claimDuePayments(
                            owner: owner,
                            limit: settings.concurrency * 4 - waiting.count,
                            lease: settings.lease
                        )
                        if more.isEmpty { claiming = false }
                        waiting = (Array(waiting) + more)[...]
                        continue
                    } catch {
                        logger.error("poller claim failed", metadata: ["error": "\(error)"])
                        claiming = false
                    }
                }
                if running == 0 { break }
                await group.next()
                running -= 1
            }
            if !waiting.isEmpty {
                // Stopping: claims not started are given back rather than
                // left to lapse, so the next poller need not wait for them.
                do {
                    try await store.releaseClaims(paymentIDs: waiting.map(\.id), owner: owner)
                } catch {
                    logger.warning("poller could not give back its claims", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// One claimed payment checked; still New, it is due again after an
    /// interval, or after a backoff that doubles with its failed attempts.
    func check(_ claimed: Payment) async {
        let now = clock.nowMs
        var asked = false
        do {
            let after = try await flows.check(claimed, .poll)
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
}

/// Set when billingd stops during a cycle's checks.
final class Stopping: Sendable {
    let flag = Atomic<Bool>(false)
}
