internal import BillingCore
internal import BillingProviders
internal import Foundation
internal import Logging
internal import Synchronization

/// Checks New payments at their payment systems: the seed's "pending
/// payments are checked every minute".
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
        /// How long a hosted payment the provider never created may wait.
        var unstartedGrace: Duration
        /// How long a saved-method charge with no answer is asked again.
        var unstartedChargeGrace: Duration
        /// How long a payment may be held for the merchant (a PayPal capture
        /// PENDING for the receiving account's settings) before the operator
        /// is told, in the log at critical level (once per payment and run).
        var heldNotice: Duration = .seconds(3600)
        /// How long a method may stay Pending after its payment was Paid
        /// (waiting for a PayPal vault id sent by webhook) before it ends Failed.
        var pendingMethodTimeout: Duration = .seconds(86_400)
    }

    let store: any BillingStore
    let flows: PaymentFlows
    let settings: Settings
    let owner: String
    let logger: Logger
    /// Held payments already reported to the operator by this process.
    private let reportedHeld = Reported()

    private final class Reported: Sendable {
        private let ids = Mutex<Set<String>>([])
        /// True the first time for an id.
        func insert(_ id: String) -> Bool { ids.withLock { $0.insert(id).inserted } }
    }

    init(store: any BillingStore, flows: PaymentFlows, settings: Settings, logger: Logger) {
        self.store = store
        self.flows = flows
        self.settings = settings
        self.logger = logger
        owner = "poller-\(ProcessInfo.processInfo.processIdentifier)-\(IDs.make("p").suffix(8))"
    }

    /// Runs until the task is cancelled.
    func run() async {
        logger.info("poller started", metadata: ["interval": "\(settings.interval)", "owner": "\(owner)"])
        var lastSweepMs: Int64 = 0
        while !Task.isCancelled {
            do {
                // Once an interval: saved methods whose payment system never sent them end Failed.
                if Self.nowMs() - lastSweepMs >= settings.interval.milliseconds {
                    lastSweepMs = Self.nowMs()
                    let failed = try await store.failStalePendingMethods(paidBeforeMs: lastSweepMs - settings.pendingMethodTimeout.milliseconds)
                    if failed > 0 { logger.notice("pending saved methods ended Failed", metadata: ["count": "\(failed)"]) }
                }
                let claimed = try await store.claimDuePayments(owner: owner, limit: settings.concurrency * 4, leaseMs: settings.lease.milliseconds)
                if !claimed.isEmpty {
                    await check(claimed)
                    continue
                }
                // Read the generation before looking, so a commit after the
                // look still wakes us.
                let generation = store.commits.generation
                let due = try await store.nextCheckDue()
                let now = Self.nowMs()
                let wait = due.map { Duration.milliseconds(max(0, $0 - now)) } ?? settings.interval
                if wait > .zero {
                    _ = await store.commits.wait(after: generation, timeout: min(wait, settings.interval))
                }
            } catch {
                logger.error("poller cycle failed", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
        logger.info("poller stopped")
    }

    /// One cycle's claims, at most `concurrency` at a time.
    func check(_ payments: [Payment]) async {
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for payment in payments {
                if running == settings.concurrency {
                    await group.next()
                    running -= 1
                }
                group.addTask { await self.check(payment) }
                running += 1
            }
        }
    }

    func check(_ claimed: Payment) async {
        let now = Self.nowMs()
        var payment = claimed
        do {
            guard let system = payment.system else {
                try await store.recordCheck(paymentID: payment.id, owner: owner, nextCheckAtMs: nil)
                return
            }
            if payment.providerReference.isEmpty {
                // The payment system was down when the payment was made (or
                // its creator is starting it right now: the provider's
                // idempotency key makes both starts one). A hosted payment
                // nobody could see is safe to cancel soon; a charge may have
                // happened unanswered, so it is asked again for much longer.
                let grace = payment.optionKind == .savedMethod ? settings.unstartedChargeGrace : settings.unstartedGrace
                if now - payment.createdAtMs > grace.milliseconds {
                    // Never cancelled without looking: a charge may have been made.
                    _ = try await flows.giveUpStarting(payment)
                    return
                }
                payment = try await flows.start(payment)
                guard payment.status == .new else { return }
                guard !payment.providerReference.isEmpty else {
                    try await scheduleNext(payment, at: now + settings.interval.milliseconds)
                    return
                }
            }
            let provider = try flows.providers.provider(system)
            let expired = now - payment.createdAtMs >= provider.paymentTimeToLive.milliseconds
            var outcome: ProviderOutcome
            if expired {
                do {
                    outcome = try await provider.expirePayment(payment)
                } catch {
                    // An expiry that keeps failing (Stripe replays a 5xx for its
                    // key) must not hide a payment made meanwhile: check it.
                    logger.warning("expiry failed; checking instead", metadata: ["payment": "\(payment.id)", "error": "\(error)"])
                    outcome = try await provider.checkPayment(payment)
                }
            } else {
                outcome = try await provider.checkPayment(payment)
            }
            // Still New after an expiry means settling (the money is on its
            // way and cannot be stopped): it ends Paid or Cancelled at the
            // provider, so keep checking; cancelling could lose a credit.
            if case .held(let why) = outcome, now - payment.createdAtMs >= settings.heldNotice.milliseconds,
               reportedHeld.insert(payment.id) {
                logger.critical("a payment waits for the merchant at its payment system: act there, or it never completes",
                                metadata: ["payment": "\(payment.id)", "system": "\(system.rawValue)", "reason": "\(why)"])
            }
            let after = try await flows.apply(outcome, to: payment)
            guard after.status == .new else { return }
            try await scheduleNext(after, at: now + settings.interval.milliseconds)
        } catch {
            // The payment stays New; try again later, backing off.
            let backoff = min(settings.maxBackoff.milliseconds,
                              settings.interval.milliseconds << Int64(min(payment.checkAttempts, 12)))
            logger.warning("payment check failed", metadata: ["payment": "\(payment.id)", "error": "\(error)", "retry_in_ms": "\(backoff)"])
            try? await store.recordCheck(paymentID: payment.id, owner: owner, nextCheckAtMs: now + backoff)
        }
    }

    private func scheduleNext(_ payment: Payment, at ms: Int64) async throws {
        try await store.recordCheck(paymentID: payment.id, owner: owner, nextCheckAtMs: ms)
    }

    static func nowMs() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
