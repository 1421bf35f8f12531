import BillingCore
import BillingProviders
import BillingStorage
import Foundation
import Logging
import Synchronization
import Testing

@testable import BillingServer

/// A payment system whose answers the test sets, counting every call.
final class ScriptedProvider: PaymentProvider {
    let system = PaymentSystem.stripe
    let paymentTimeToLive: Duration
    let outcomes = Mutex<[String: ProviderOutcome]>([:])
    /// The answer for payments with no outcome of their own.
    let fallback = Mutex<ProviderOutcome>(.pending)
    let checks = Mutex<[String: Int]>([:])
    let expiries = Mutex<[String]>([])
    /// Payments whose money is on its way: expiry cannot stop them.
    let settling = Mutex<Set<String>>([])
    let unavailable = Atomic<Bool>(false)
    /// Off-session charges get no answer (a replayed 5xx), though they are made.
    let chargesUnanswered = Atomic<Bool>(false)
    /// Charges made, by payment id, whatever the answer was.
    let charged = Mutex<[String: ProviderCharge]>([:])
    let lookups = Atomic<Int>(0)
    /// Hosted payments created (starts sent).
    let starts = Atomic<Int>(0)
    /// Expiry fails (a 5xx replayed for its key) while checks answer.
    let expiryFails = Atomic<Bool>(false)

    init(timeToLive: Duration = .seconds(3600)) {
        paymentTimeToLive = timeToLive
    }

    func createPayment(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderPayment {
        starts.add(1, ordering: .relaxed)
        if unavailable.load(ordering: .relaxed) { throw .unavailable("scripted outage") }
        return ProviderPayment(
            reference: "cs_\(request.payment.id)",
            redirectURL: "https://pay.example/\(request.payment.id)"
        )
    }

    func chargeSavedMethod(_ payment: Payment, method: PaymentMethod) async throws(ProviderError) -> ProviderCharge {
        let charge = ProviderCharge(reference: "pi_\(payment.id)", outcome: .paid(nil))
        charged.withLock { $0[payment.id] = charge }
        if chargesUnanswered.load(ordering: .relaxed) {
            throw .unavailable("HTTP 500 (replayed for its idempotency key)")
        }
        return charge
    }

    func findCharge(_ payment: Payment, method: PaymentMethod) async throws(ProviderError) -> ProviderCharge? {
        lookups.add(1, ordering: .relaxed)
        if unavailable.load(ordering: .relaxed) { throw .unavailable("scripted outage") }
        return charged.withLock { $0[payment.id] }
    }

    func checkPayment(_ payment: Payment) async throws(ProviderError) -> ProviderOutcome {
        checks.withLock { $0[payment.id, default: 0] += 1 }
        // Slow enough that two pollers would overlap if they could.
        try? await Task.sleep(for: .milliseconds(5))
        if unavailable.load(ordering: .relaxed) { throw .unavailable("scripted outage") }
        return outcomes.withLock { $0[payment.id] } ?? fallback.withLock { $0 }
    }

    func expirePayment(_ payment: Payment) async throws(ProviderError) -> ProviderOutcome {
        expiries.withLock { $0.append(payment.id) }
        if expiryFails.load(ordering: .relaxed) { throw .unavailable("HTTP 500 (replayed for its idempotency key)") }
        let outcome = outcomes.withLock { $0[payment.id] } ?? .pending
        if settling.withLock({ $0.contains(payment.id) }) { return outcome }
        return outcome == .pending ? .failed("expired") : outcome
    }

    func removeMethod(_ method: PaymentMethod) async throws(ProviderError) {}

    func reversals(of payment: Payment) async throws(ProviderError) -> [ProviderReversal] { [] }

    func record(of payment: Payment) async throws(ProviderError) -> Reconciliation.Record? {
        throw .unavailable("the poller tests do not reconcile")
    }

    func takenPayments(fromMs: Int64, toMs: Int64) async throws(ProviderError) -> [Reconciliation.Record]? { nil }

    func savedMethods(customers: [String]) async throws(ProviderError) -> [String]? { nil }
}

@Suite struct PollerTests {
    struct Setup {
        let store: SQLiteStore
        let provider: ScriptedProvider
        /// Time moves only when a test moves it.
        let clock: ManualClock
        let flows: PaymentFlows
        let directory: String
        let payerID: String

        func poller(
            interval: Duration = .milliseconds(200),
            grace: Duration = .seconds(600),
            chargeGrace: Duration? = nil,
            stripeChecksPerSecond: Double? = nil
        ) -> Poller {
            let flows = PaymentFlows(
                store: store,
                providers: ProviderRegistry(providers: [.stripe: provider, .paypal: provider]),
                clock: clock,
                settings: PaymentFlows.Settings(unstartedGrace: grace, unstartedChargeGrace: chargeGrace ?? grace),
                logger: Logger(label: "flows-test")
            )
            return Poller(
                store: store,
                flows: flows,
                clock: clock,
                settings: Poller.Settings(
                    interval: interval,
                    concurrency: 4,
                    lease: .seconds(60),
                    maxBackoff: .seconds(3600),
                    checksPerSecond: stripeChecksPerSecond.map { [.stripe: $0] } ?? [:]
                ),
                logger: Logger(label: "poller-test")
            )
        }

        /// A Confirmed saved Stripe method (the payer's default), from a paid
        /// top-up of 10.00 that saved it; its id.
        func savedMethod() async throws -> String {
            let saving = try await store.createTopUp(
                TopUpRequest(
                    accountID: "acc",
                    payerID: payerID,
                    amount: Money(minorUnits: 10_00, .usd),
                    option: .paymentSystem(.stripe, saveMethod: true, returnURL: "https://panel.example/p")
                ),
                idempotencyKey: nil
            )
            _ = try await store.transition(
                paymentID: saving.id,
                .paid(savedMethodReference: "cus_1/pm_1", displayName: "Visa •••• 4242")
            )
            return try #require(try await store.payment(saving.id).savedPaymentMethodID)
        }

        func payment(started: Bool = true, system: PaymentSystem = .stripe) async throws -> Payment {
            let payment = try await store.createTopUp(
                TopUpRequest(
                    accountID: "acc",
                    payerID: payerID,
                    amount: Money(minorUnits: 10_00, .usd),
                    option: .paymentSystem(system, saveMethod: false, returnURL: "https://panel.example/p")
                ),
                idempotencyKey: nil
            )
            return started ? try await flows.start(payment) : payment
        }
    }

    func setup(provider: ScriptedProvider = ScriptedProvider()) async throws -> Setup {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("poller-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let clock = ManualClock()
        let store = try SQLiteStore(StorageConfiguration(path: directory + "/billing.sqlite"), clock: clock)
        _ = try await store.createAccount(id: "acc", displayName: "A", currency: .usd)
        let payer = try await store.createPayer(accountID: "acc", displayName: "P", email: "")
        let flows = PaymentFlows(
            store: store,
            providers: ProviderRegistry(providers: [.stripe: provider, .paypal: provider]),
            clock: clock,
            logger: Logger(label: "flows-test")
        )
        return Setup(
            store: store,
            provider: provider,
            clock: clock,
            flows: flows,
            directory: directory,
            payerID: payer.id
        )
    }

    @Test func twoPollersNeverCheckOnePaymentAtOnce() async throws {
        let s = try await setup()
        var ids: [String] = []
        for _ in 0..<40 { ids.append(try await s.payment().id) }
        // A long interval: however slow the machine, the next check is not yet due below.
        let first = s.poller(interval: .seconds(600)), second = s.poller(interval: .seconds(600))
        async let a: Void = first.check(
            try await s.store.claimDuePayments(owner: first.owner, limit: 40, lease: .seconds(60))
        )
        async let b: Void = second.check(
            try await s.store.claimDuePayments(owner: second.owner, limit: 40, lease: .seconds(60))
        )
        _ = try await (a, b)
        let checks = s.provider.checks.withLock { $0 }
        #expect(checks.count == 40)
        #expect(checks.values.allSatisfy { $0 == 1 }, "each payment checked once: \(checks.values.sorted())")
        // Checked and still New: the next check is an interval away, the claim released.
        let after = try await s.store.payment(ids[0])
        #expect(after.checkAttempts == 1)
        #expect(try await s.store.claimDuePayments(owner: "third", limit: 40, lease: .seconds(60)).isEmpty)
    }

    @Test func aBurstClaimsMoreWhileItsChecksRunUntilNoneIsDue() async throws {
        let s = try await setup()
        for _ in 0..<30 { _ = try await s.payment() }
        let poller = s.poller(interval: .seconds(600))
        // A first claim of 4; the rest are claimed as the checks run (concurrency 4).
        let first = try await s.store.claimDuePayments(owner: poller.owner, limit: 4, lease: .seconds(60))
        #expect(first.count == 4)
        await poller.check(first, claimingMore: true)
        let checks = s.provider.checks.withLock { $0 }
        #expect(checks.count == 30)
        #expect(checks.values.allSatisfy { $0 == 1 }, "each payment checked once: \(checks.values.sorted())")
        #expect(try await s.store.pollerBacklog().due == 0)
    }

    @Test func checksOfAPaymentSystemKeepToItsRate() async throws {
        let s = try await setup()
        for _ in 0..<12 { _ = try await s.payment() }
        let poller = s.poller(interval: .seconds(600), stripeChecksPerSecond: 5)
        let claimed = try await s.store.claimDuePayments(owner: poller.owner, limit: 12, lease: .seconds(60))
        let burst = Task { await poller.check(claimed) }
        func checked() -> Int { s.provider.checks.withLock { $0.values.reduce(0, +) } }
        // A second's worth at once (5), then nothing until time passes: the
        // clock stands still, so no sixth check can start until it moves.
        try await until { checked() == 5 && s.clock.sleepers > 0 }
        #expect(checked() == 5)
        s.clock.advance(by: .seconds(1))
        try await until { checked() == 10 && s.clock.sleepers > 0 }
        #expect(checked() == 10)
        s.clock.advance(by: .seconds(1))
        await burst.value
        #expect(checked() == 12)
        let checks = s.provider.checks.withLock { $0 }
        #expect(checks.values.allSatisfy { $0 == 1 })
    }

    @Test func aPaymentSystemAtItsRateHoldsBackNoOther() async throws {
        let s = try await setup()
        var stripe: Set<String> = []
        var paypal: Set<String> = []
        for _ in 0..<6 { stripe.insert(try await s.payment(system: .stripe).id) }
        for _ in 0..<6 { paypal.insert(try await s.payment(system: .paypal).id) }
        let poller = s.poller(interval: .seconds(600), stripeChecksPerSecond: 1)
        // Stripe's payments come first in claim order; the first claim takes 4.
        let first = try await s.store.claimDuePayments(owner: poller.owner, limit: 4, lease: .seconds(60))
        let burst = Task { await poller.check(first, claimingMore: true) }
        func checked(_ ids: Set<String>) -> Int {
            s.provider.checks.withLock { $0.filter { ids.contains($0.key) }.values.reduce(0, +) }
        }
        // One Stripe check (its second's worth), and every PayPal payment,
        // claimed past the Stripe ones that wait, while the clock stands still.
        try await until { checked(paypal) == 6 && s.clock.sleepers > 0 }
        #expect(checked(stripe) == 1)
        for second in 2...6 {
            s.clock.advance(by: .seconds(1))
            try await until { checked(stripe) == second }
        }
        s.clock.advance(by: .seconds(1))
        await burst.value
        #expect(s.provider.checks.withLock { $0 }.values.allSatisfy { $0 == 1 })
        #expect(try await s.store.pollerBacklog().due == 0)
    }

    /// Waits (30 s at most) until `condition` holds; the #expect after it says what failed.
    private func until(_ condition: () -> Bool) async throws {
        let patience = ContinuousClock.now.advanced(by: .seconds(30))
        while !condition(), ContinuousClock.now < patience { try await Task.sleep(for: .milliseconds(5)) }
    }

    /// The poller's sweep renews a service whose window opened: the balance's
    /// 10.00 first, the default method charged the other 15.00 at once, the
    /// order completed when the charge is Paid; audited as the poller's.
    @Test func thePollerRenewsAServiceWithTheBalanceAndTheDefaultMethod() async throws {
        let s = try await setup()
        _ = try await s.savedMethod()
        let day: Int64 = 86_400_000
        _ = try await s.store.upsertRenewableService(
            RenewableService(
                id: "svc",
                accountID: "acc",
                displayName: "VPS",
                pricePerPeriod: Money(minorUnits: 25_00, .usd),
                periodDays: 30,
                expiresAtMs: s.clock.nowMs + 5 * day,
                updatedAtMs: 0,
                autoRenewal: AutoRenewal(daysBefore: 7, payerID: s.payerID)
            ),
            keepingAutoRenewal: false
        )
        let poller = s.poller(interval: .seconds(600))
        let running = Task { await poller.run() }
        defer { running.cancel() }
        let patience = ContinuousClock.now.advanced(by: .seconds(60))
        var service = try await s.store.renewableServices(accountID: "acc")[0]
        while service.expiresAtMs == s.clock.nowMs + 5 * day, ContinuousClock.now < patience {
            try await Task.sleep(for: .milliseconds(10))
            service = try await s.store.renewableServices(accountID: "acc")[0]
        }
        running.cancel()
        await running.value
        #expect(service.expiresAtMs > s.clock.nowMs + 30 * day, "renewed for a period")
        #expect(try await s.store.balance(accountID: "acc").funds.balance.amountMinorUnits == 0)
        let charged = s.provider.charged.withLock { $0 }
        #expect(charged.count == 1)
        let payment = try await s.store.payment(try #require(charged.keys.first))
        #expect(payment.amount.amountMinorUnits == 15_00 && payment.status == .paid)
        let audit = try await s.store.auditTrail(AuditQuery(accountID: "acc", limit: 500))
        #expect(audit.contains { $0.action == "service.auto_renewal" && $0.who == "poller" })
    }

    /// An invoice nobody paid is voided by the poller once past its due date
    /// and grace (14 + 7 days by default), with an error notification; not a day before.
    @Test func anUnpaidInvoiceEndsVoidAfterItsDueDateAndGrace() async throws {
        let s = try await setup()
        let invoice = try await s.store.createTopUp(
            TopUpRequest(
                accountID: "acc",
                payerID: s.payerID,
                amount: Money(minorUnits: 50_00, .usd),
                option: .invoice
            ),
            idempotencyKey: nil
        )
        let poller = s.poller(interval: .seconds(600))
        s.clock.advance(by: .seconds(20 * 86_400))
        #expect(try await s.store.claimDuePayments(owner: poller.owner, limit: 10, lease: .seconds(60)).isEmpty)
        s.clock.advance(by: .seconds(86_400))
        let claimed = try await s.store.claimDuePayments(owner: poller.owner, limit: 10, lease: .seconds(60))
        #expect(claimed.map(\.id) == [invoice.id])
        await poller.check(claimed)
        let voided = try await s.store.payment(invoice.id)
        #expect(voided.status == .cancelled)
        #expect(voided.failureReason.contains("was not paid by its due date"), "\(voided.failureReason)")
        let notifications = try await s.store.notifications(accountID: "acc", pageSize: 10, pageToken: nil).items
        #expect(notifications.contains { $0.severity == .error && $0.paymentID == invoice.id })
        #expect(try await s.store.invoiceDocument(invoice.id).state == .void)
        // A refresh of a still-open invoice before its time changes nothing.
        let open = try await s.store.createTopUp(
            TopUpRequest(accountID: "acc", payerID: s.payerID, amount: Money(minorUnits: 5_00, .usd), option: .invoice),
            idempotencyKey: nil
        )
        #expect(try await s.flows.check(open).status == .new)
    }

    @Test func theNextDueCheckCountsLeasesAndTheEarliestNextCheck() async throws {
        let s = try await setup()
        #expect(try await s.store.nextCheckDue() == nil)
        for _ in 0..<5 { _ = try await s.payment() }
        let now = s.clock.nowMs
        #expect(try await s.store.nextCheckDue() == now)
        // Claimed: due when the lease ends.
        let claimed = try await s.store.claimDuePayments(owner: "p", limit: 5, lease: .seconds(60))
        #expect(claimed.count == 5)
        #expect(try await s.store.nextCheckDue() == now + 60_000)
        // Checked, next in 10 s, the lease released: that one is first.
        try await s.store.recordCheck(paymentID: claimed[3].id, owner: "p", nextCheckAtMs: now + 10_000)
        #expect(try await s.store.nextCheckDue() == now + 10_000)
        // A later next check than every lease: the leases come first again.
        try await s.store.recordCheck(paymentID: claimed[3].id, owner: "p", nextCheckAtMs: now + 90_000)
        #expect(try await s.store.nextCheckDue() == now + 60_000)
    }

    @Test func aStoppingPollerGivesBackTheClaimsItDidNotStart() async throws {
        let s = try await setup()
        for _ in 0..<12 { _ = try await s.payment() }
        let poller = s.poller(interval: .seconds(600))
        let claimed = try await s.store.claimDuePayments(owner: poller.owner, limit: 12, lease: .seconds(60))
        #expect(claimed.count == 12)
        let stopping = Stopping()
        stopping.flag.store(true, ordering: .relaxed)
        await poller.check(claimed, unless: stopping, claimingMore: true)
        #expect(s.provider.checks.withLock { $0 }.isEmpty)
        // Given back: another poller takes all twelve at once, not after the lease.
        let taken = try await s.store.claimDuePayments(owner: "next", limit: 12, lease: .seconds(60))
        #expect(taken.count == 12)
        // A claim of another owner is not given back by this one.
        try await s.store.releaseClaims(paymentIDs: taken.map(\.id), owner: poller.owner)
        #expect(try await s.store.claimDuePayments(owner: "third", limit: 12, lease: .seconds(60)).isEmpty)
    }

    @Test func paidAtTheProviderBecomesPaidOnce() async throws {
        let s = try await setup()
        let payment = try await s.payment()
        s.provider.outcomes.withLock { $0[payment.id] = .paid(nil) }
        let poller = s.poller()
        await poller.check(try await s.store.claimDuePayments(owner: poller.owner, limit: 10, lease: .seconds(60)))
        #expect(try await s.store.payment(payment.id).status == .paid)
        #expect(try await s.store.ledgerEntryCount(paymentID: payment.id) == 1)
    }

    @Test func providerErrorsBackOffAndChangeNothing() async throws {
        let s = try await setup()
        let payment = try await s.payment()
        s.provider.unavailable.store(true, ordering: .relaxed)
        let poller = s.poller(interval: .seconds(60))
        let before = s.clock.nowMs
        await poller.check(try await s.store.claimDuePayments(owner: poller.owner, limit: 10, lease: .seconds(60)))
        let after = try await s.store.payment(payment.id)
        #expect(after.status == .new)
        #expect(after.checkAttempts == 1)
        // First failure: one interval; the next would be two, then four …
        #expect(after.nextCheckAtMs == before + 60_000)
    }

    @Test func aPaymentPastItsTimeToLiveIsExpiredAtTheProviderThenCancelled() async throws {
        let s = try await setup(provider: ScriptedProvider(timeToLive: .zero))
        let payment = try await s.payment()
        let poller = s.poller()
        await poller.check(try await s.store.claimDuePayments(owner: poller.owner, limit: 10, lease: .seconds(60)))
        #expect(s.provider.expiries.withLock { $0 } == [payment.id])
        let after = try await s.store.payment(payment.id)
        #expect(after.status == .cancelled)
        #expect(after.failureReason == "expired")
    }

    @Test func aRefreshOrWebhookNeverExpiresOrGivesUpAPaymentOnlyThePollerDoes() async throws {
        let s = try await setup(provider: ScriptedProvider(timeToLive: .zero))
        let expiring = try await s.payment()
        let unstarted = try await s.payment(started: false)
        s.clock.advance(by: .seconds(3600))
        // A refresh (RefreshPayment) and a webhook's check: asked, nothing ended.
        #expect(try await s.flows.check(expiring).status == .new)
        #expect(try await s.flows.check(paymentID: expiring.id, system: .stripe)?.status == .new)
        #expect(s.provider.expiries.withLock { $0 } == [])
        let startsBefore = s.provider.starts.load(ordering: .relaxed)
        let untouched = try await s.flows.check(unstarted)
        #expect(
            untouched.status == .new && untouched.providerReference.isEmpty,
            "past its grace: neither started again nor given up"
        )
        #expect(s.provider.starts.load(ordering: .relaxed) == startsBefore, "no start sent past the grace")
        // The poller, on its schedule, expires it.
        #expect(try await s.flows.check(expiring, .poll).status == .cancelled)
        #expect(s.provider.expiries.withLock { $0 } == [expiring.id])
    }

    @Test func aSettlingPaymentPastItsTimeToLiveIsCheckedAgainNotCancelled() async throws {
        let s = try await setup(provider: ScriptedProvider(timeToLive: .zero))
        let payment = try await s.payment()
        s.provider.settling.withLock { _ = $0.insert(payment.id) }
        let poller = s.poller()
        await poller.check(try await s.store.claimDuePayments(owner: poller.owner, limit: 10, lease: .seconds(60)))
        let settling = try await s.store.payment(payment.id)
        #expect(settling.status == .new, "the money may still arrive")
        #expect(settling.nextCheckAtMs != nil)
        do {
            _ = try await s.flows.cancel(settling, reason: "by the operator", by: .support)
            Issue.record("a settling payment was cancelled")
        } catch {
            #expect("\(error)".contains("settling"), "\(error)")
        }
        #expect(try await s.store.payment(payment.id).status == .new)

        s.provider.outcomes.withLock { $0[payment.id] = .paid(nil) }
        await poller.check(try await s.store.payment(payment.id))
        #expect(try await s.store.payment(payment.id).status == .paid)
    }

    @Test func paidJustBeforeExpiryIsPaidNotCancelled() async throws {
        let s = try await setup(provider: ScriptedProvider(timeToLive: .zero))
        let payment = try await s.payment()
        s.provider.outcomes.withLock { $0[payment.id] = .paid(nil) }
        let poller = s.poller()
        await poller.check(try await s.store.claimDuePayments(owner: poller.owner, limit: 10, lease: .seconds(60)))
        #expect(try await s.store.payment(payment.id).status == .paid)
    }

    @Test func aPaymentTheProviderNeverStartedIsStartedLaterOrCancelledAfterTheGrace() async throws {
        let s = try await setup()
        s.provider.unavailable.store(true, ordering: .relaxed)
        let young = try await s.payment(started: false)
        s.provider.unavailable.store(false, ordering: .relaxed)
        let poller = s.poller()
        await poller.check(try await s.store.claimDuePayments(owner: poller.owner, limit: 10, lease: .seconds(60)))
        #expect(
            try await s.store.payment(young.id).providerReference == "cs_\(young.id)",
            "started once the provider answered"
        )

        let old = try await s.payment(started: false)
        let strict = s.poller(grace: .zero)
        s.clock.advance(by: .milliseconds(5))
        await strict.check(try await s.store.claimDuePayments(owner: strict.owner, limit: 10, lease: .seconds(60)))
        let cancelled = try await s.store.payment(old.id)
        #expect(cancelled.status == .cancelled)
    }

    @Test func aChargeWithNoAnswerIsAskedAgainLongAfterAHostedPaymentWouldBeCancelled() async throws {
        let s = try await setup()
        // A confirmed saved method, from a paid top-up that saved it.
        let method = try await s.savedMethod()
        // A charge of it whose answer was lost (recorded, never started).
        let charge = try await s.store.createTopUp(
            TopUpRequest(
                accountID: "acc",
                payerID: s.payerID,
                amount: Money(minorUnits: 5_00, .usd),
                option: .savedMethod(id: method)
            ),
            idempotencyKey: nil
        )
        s.clock.advance(by: .milliseconds(5))
        let poller = s.poller(grace: .zero, chargeGrace: .seconds(3600))
        await poller.check(try await s.store.claimDuePayments(owner: poller.owner, limit: 10, lease: .seconds(60)))
        #expect(try await s.store.payment(charge.id).status == .paid, "asked again under its key, not cancelled")
    }

    /// A confirmed saved method (from a paid top-up that saved it) and a
    /// charge of it recorded but not started.
    func unstartedCharge(_ s: Setup) async throws -> Payment {
        let method = try await s.savedMethod()
        return try await s.store.createTopUp(
            TopUpRequest(
                accountID: "acc",
                payerID: s.payerID,
                amount: Money(minorUnits: 5_00, .usd),
                option: .savedMethod(id: method)
            ),
            idempotencyKey: nil
        )
    }

    @Test func aChargeAnsweredOnlyWithReplayedErrorsIsLookedUpBeforeItIsGivenUpAndCredited() async throws {
        let s = try await setup()
        s.provider.chargesUnanswered.store(true, ordering: .relaxed)
        let charge = try await unstartedCharge(s)
        // The charge is made at the payment system, but every answer is a (replayed) 500.
        await #expect(throws: ProviderError.self) { _ = try await s.flows.start(charge) }
        #expect(try await s.store.payment(charge.id).status == .new)
        s.clock.advance(by: .milliseconds(5))
        // Past the grace: looked up by our payment id, found, credited.
        let poller = s.poller(grace: .zero, chargeGrace: .zero)
        await poller.check(try await s.store.claimDuePayments(owner: poller.owner, limit: 10, lease: .seconds(60)))
        #expect(s.provider.lookups.load(ordering: .relaxed) == 1)
        #expect(try await s.store.payment(charge.id).status == .paid, "a charge that happened is credited")
        #expect(try await s.store.balance(accountID: "acc").funds.balance.amountMinorUnits == 15_00)
    }

    @Test func aChargeThePaymentSystemHasNoRecordOfIsCancelledAndOneItCannotTellIsKept() async throws {
        let s = try await setup()
        let charge = try await unstartedCharge(s)
        s.clock.advance(by: .milliseconds(5))
        let poller = s.poller(grace: .zero, chargeGrace: .zero)
        // The lookup itself fails: nobody can tell, so it stays New.
        s.provider.unavailable.store(true, ordering: .relaxed)
        await poller.check(try await s.store.claimDuePayments(owner: poller.owner, limit: 10, lease: .seconds(60)))
        #expect(try await s.store.payment(charge.id).status == .new, "no answer: not cancelled")
        // The payment system answers: it has nothing for this payment.
        s.provider.unavailable.store(false, ordering: .relaxed)
        _ = try await s.poller(grace: .zero, chargeGrace: .zero).flows.check(
            try await s.store.payment(charge.id),
            .poll
        )
        let after = try await s.store.payment(charge.id)
        #expect(after.status == .cancelled)
        #expect(after.failureReason.contains("no record of this charge"))
    }

    @Test func anExpiryThatKeepsFailingIsReplacedByACheckThatFindsThePayment() async throws {
        let s = try await setup(provider: ScriptedProvider(timeToLive: .zero))
        let payment = try await s.payment()
        s.provider.expiryFails.store(true, ordering: .relaxed)
        s.provider.outcomes.withLock { $0[payment.id] = .paid(nil) }
        let poller = s.poller()
        await poller.check(try await s.store.claimDuePayments(owner: poller.owner, limit: 10, lease: .seconds(60)))
        #expect(s.provider.expiries.withLock { $0 } == [payment.id], "expiry was tried")
        #expect(
            try await s.store.payment(payment.id).status == .paid,
            "the check after the failed expiry found it Paid"
        )
    }

    @Test func aCallerStartingAPaymentThePollerAlreadyFinishedGetsItsState() async throws {
        let s = try await setup()
        s.provider.fallback.withLock { $0 = .paid(nil) }
        let snapshot = try await s.payment(started: false)
        let poller = s.poller()
        await poller.check(try await s.store.claimDuePayments(owner: poller.owner, limit: 10, lease: .seconds(60)))
        #expect(try await s.store.payment(snapshot.id).status == .paid, "the poller started and finished it")
        // The creator's own start, a moment late, with the same idempotency key.
        let started = try await s.flows.start(snapshot)
        #expect(started.status == .paid)
        #expect(try await s.store.balance(accountID: "acc").funds.balance.amountMinorUnits == 10_00, "credited once")
    }

    @Test func theRunningPollerWakesForANewPaymentAndSleepsWhenIdle() async throws {
        let s = try await setup()
        // An hour's interval: only the commit's wake-up can make the poller
        // check the new payment within the bound below, however slow the machine.
        let poller = s.poller(interval: .seconds(3600))
        let task = Task { await poller.run() }
        defer { task.cancel() }
        // Asleep on its clock (the commit signal's timer) before the payment exists.
        while s.clock.sleepers == 0 { try await Task.sleep(for: .milliseconds(5)) }
        // Paid from its first check on (the poller may check it the moment it exists).
        s.provider.fallback.withLock { $0 = .paid(nil) }
        let payment = try await s.payment()
        let deadline = ContinuousClock.now.advanced(by: .seconds(300))
        while try await s.store.payment(payment.id).status == .new, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(try await s.store.payment(payment.id).status == .paid)
        // Idle: no further checks of anything.
        let checks = s.provider.checks.withLock { $0.values.reduce(0, +) }
        try await Task.sleep(for: .milliseconds(300))
        #expect(s.provider.checks.withLock { $0.values.reduce(0, +) } == checks)
    }
}
