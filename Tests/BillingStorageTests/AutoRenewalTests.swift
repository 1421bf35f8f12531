import BillingCore
import BillingStorage
import Testing

/// Services that renew themselves: the setting's rules, the window, balance
/// first and the default method for the rest, once per period, retries
/// after failures until expiry, on a real SQLite file with a manual clock.
@Suite struct AutoRenewalTests {
    static let day: Int64 = 86_400_000
    static let retry = Duration.seconds(86_400)

    /// A 30-day service at 10.00 expiring in 10 days, renewing itself 7 days before.
    static func service(_ f: StoreFixture, payer: String? = nil) async throws -> RenewableService {
        let service = try await f.service(
            "svc-auto",
            price: "10",
            expiresAtMs: f.clock.nowMs + 10 * day,
            name: "VPS auto"
        )
        return try await f.store.setAutoRenewal(
            accountID: f.account.id,
            serviceID: service.id,
            AutoRenewal(daysBefore: 7, payerID: payer)
        )
    }

    static func fund(_ f: StoreFixture, _ amount: String) async throws {
        let topUp = try await f.topUp(amount)
        _ = try await f.store.transition(paymentID: topUp.id, .paid)
    }

    static func attempt(_ f: StoreFixture) async throws -> AutoRenewals.Attempt {
        try await f.store.attemptAutoRenewal(serviceID: "svc-auto", retry: retry)
    }

    static func stored(_ f: StoreFixture) async throws -> RenewableService {
        try #require(try await f.store.renewableServices(accountID: f.account.id).first { $0.id == "svc-auto" })
    }

    static func notifications(_ f: StoreFixture) async throws -> [Notification] {
        try await f.store.notifications(accountID: f.account.id, pageSize: 100, pageToken: nil).items
    }

    @Test(arguments: Backend.allCases)
    func theSettingIsCheckedAndKept(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let service = try await Self.service(f)
        #expect(service.autoRenewal == AutoRenewal(daysBefore: 7, payerID: nil))
        for bad in [0, 31, 91] {
            await #expect(throws: BillingError.self) {
                try await f.store.setAutoRenewal(
                    accountID: f.account.id,
                    serviceID: service.id,
                    AutoRenewal(daysBefore: bad, payerID: nil)
                )
            }
        }
        let other = try await f.store.createAccount(id: "acc_other", displayName: "O", currency: .usd)
        let stranger = try await f.store.createPayer(accountID: other.id, displayName: "S", email: "")
        await #expect(throws: BillingError.notFound("payer \(stranger.id) not found")) {
            try await f.store.setAutoRenewal(
                accountID: f.account.id,
                serviceID: service.id,
                AutoRenewal(daysBefore: 7, payerID: stranger.id)
            )
        }
        // Another account cannot touch the service.
        await #expect(throws: BillingError.notFound("service svc-auto not found")) {
            try await f.store.setAutoRenewal(accountID: other.id, serviceID: service.id, nil)
        }
        // The provisioning service's update keeps the setting; a period below the lead is refused.
        var update = service
        update.autoRenewal = nil
        update.pricePerPeriod = try f.usd("11")
        let kept = try await f.store.upsertRenewableService(update, keepingAutoRenewal: true)
        #expect(try kept.autoRenewal?.daysBefore == 7 && kept.pricePerPeriod == f.usd("11"))
        update.periodDays = 5
        await #expect(throws: BillingError.self) {
            try await f.store.upsertRenewableService(update, keepingAutoRenewal: true)
        }
        let off = try await f.store.setAutoRenewal(accountID: f.account.id, serviceID: service.id, nil)
        #expect(off.autoRenewal == nil)
        #expect(try await Self.stored(f).autoRenewal == nil)
    }

    @Test(arguments: Backend.allCases)
    func theBalanceRenewsOncePerPeriodWhenTheWindowOpens(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let service = try await Self.service(f)
        try await Self.fund(f, "25")
        // Ten days before expiry: the 7-day window is not open yet.
        #expect(try await f.store.dueAutoRenewals(limit: 10) == [])
        #expect(try await Self.attempt(f) == .notDue)
        f.clock.advance(by: .seconds(3 * 86_400 + 60))
        #expect(try await f.store.dueAutoRenewals(limit: 10) == ["svc-auto"])
        guard case .renewed(let order) = try await Self.attempt(f) else {
            Issue.record("not renewed from the balance")
            return
        }
        #expect(order.status == .completed && order.autoPeriodMs == service.expiresAtMs)
        #expect(try await Self.stored(f).expiresAtMs == service.expiresAtMs + 30 * Self.day)
        #expect(try await f.balanceMinor() == 15_00)
        // The next period's window opens a period later: nothing due now, a second attempt writes nothing.
        #expect(try await f.store.dueAutoRenewals(limit: 10) == [])
        #expect(try await Self.attempt(f) == .notDue)
        #expect(try await f.balanceMinor() == 15_00)
        #expect(try await Self.notifications(f).contains { $0.title == "Renewed automatically" })
        let audit = try await f.store.auditTrail(AuditQuery(accountID: f.account.id, limit: 500))
        #expect(audit.contains { $0.action == "service.auto_renewal" && $0.who == "billingd" })
        #expect(try await f.checkInvariants() == [])
    }

    /// The provisioning service sets the expiry back after an automatic
    /// renewal: the period is not renewed (nor paid) twice, and the person is told.
    @Test(arguments: Backend.allCases)
    func aPeriodRenewedOnceIsNotRenewedAgainWhenTheExpiryIsSetBack(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let service = try await Self.service(f)
        try await Self.fund(f, "25")
        f.clock.advance(by: .seconds(3 * 86_400 + 60))
        guard case .renewed = try await Self.attempt(f) else {
            Issue.record("not renewed")
            return
        }
        _ = try await f.store.upsertRenewableService(service, keepingAutoRenewal: true)
        #expect(try await Self.attempt(f) == .notDue)
        #expect(try await f.balanceMinor() == 15_00, "one debit")
        #expect(try await Self.notifications(f).contains { $0.title == "Automatic renewal stopped" })
        #expect(try await f.store.dueAutoRenewals(limit: 10) == [], "no more attempts this period")
        #expect(try await f.checkInvariants() == [])
    }

    @Test(arguments: Backend.allCases)
    func theDefaultMethodPaysOnlyTheRestAndAPaymentRunningTakesThePeriod(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let method = try await f.confirmedMethod()  // leaves 1.00 on the balance
        try await Self.fund(f, "3")
        _ = try await Self.service(f, payer: f.payer.id)
        f.clock.advance(by: .seconds(4 * 86_400))
        guard case .charging(let order, let payment) = try await Self.attempt(f) else {
            Issue.record("no charge")
            return
        }
        #expect(try payment.amount == f.usd("6"), "10.00 less the 4.00 available")
        #expect(payment.paymentMethodID == method.id && payment.purpose == .renewal)
        #expect(try order.fromBalance == f.usd("4") && order.autoPeriodMs != nil)
        // Another attempt (another poller, the next sweep) finds the period taken.
        #expect(try await Self.attempt(f) == .notDue)
        f.clock.advance(by: Self.retry + .seconds(1))
        #expect(try await Self.attempt(f) == .notDue, "still taken while the payment runs")
        _ = try await f.store.transition(paymentID: payment.id, .paid)
        #expect(try await f.store.renewalOrder(order.id).status == .completed)
        #expect(try await f.balanceMinor() == 0)
        #expect(try await Self.notifications(f).contains { $0.title == "Renewed automatically" })
        #expect(try await Self.stored(f).autoRenewal?.nextAttemptAtMs == nil, "a new period starts a fresh schedule")
        #expect(try await f.checkInvariants() == [])
    }

    @Test(arguments: Backend.allCases)
    func aRefusedChargeIsRetriedForTheSamePeriod(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        _ = try await f.confirmedMethod()
        let service = try await Self.service(f, payer: f.payer.id)
        f.clock.advance(by: .seconds(4 * 86_400))
        guard case .charging(let first, let payment) = try await Self.attempt(f) else {
            Issue.record("no charge")
            return
        }
        _ = try await f.store.transition(paymentID: payment.id, .cancelled("card declined"))
        #expect(try await f.store.renewalOrder(first.id).status == .cancelled)
        #expect(try await f.balanceMinor() == 1_00, "nothing debited, the hold released")
        #expect(try await Self.notifications(f).contains { $0.severity == .error && $0.paymentID == payment.id })
        let told = try await Self.notifications(f).first { $0.title == "Automatic renewal failed" }
        #expect(told?.paymentID == payment.id && told?.body.contains("VPS auto was not renewed") == true)
        #expect(told?.body.contains("card declined") == true && told?.body.contains("next attempt is at") == true)
        let audit = try await f.store.auditTrail(AuditQuery(accountID: f.account.id, limit: 500))
        #expect(
            audit.contains { $0.action == "service.auto_renewal" && $0.detail.contains("cancelled: card declined") }
        )
        #expect(try await Self.attempt(f) == .notDue, "the retry waits its interval")
        f.clock.advance(by: Self.retry)
        guard case .charging(let second, _) = try await Self.attempt(f) else {
            Issue.record("not retried")
            return
        }
        #expect(second.autoPeriodMs == service.expiresAtMs && second.id != first.id)
        #expect(try await f.checkInvariants() == [])
    }

    /// Services whose period is taken by an order awaiting payment (a reseller
    /// paying 100+ services by bank transfer) never crowd out a due one.
    @Test(arguments: Backend.allCases)
    func servicesWaitingForAPaymentDoNotStarveTheSweep(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        var blocked: [RenewalItem] = []
        for index in 0..<101 {
            let id = "svc-wait-\(index)"
            _ = try await f.service(id, price: "1", expiresAtMs: f.clock.nowMs + 1 * Self.day)
            blocked.append(RenewalItem(serviceID: id, periods: 1))
        }
        for chunk in [Array(blocked[0..<100]), Array(blocked[100...])] {
            _ = try await f.store.renew(
                accountID: f.account.id,
                payerID: f.payer.id,
                items: chunk,
                option: .invoice,
                expectedTotal: nil,
                expectedToPay: nil,
                idempotencyKey: nil
            )
        }
        for item in blocked {
            _ = try await f.store.setAutoRenewal(
                accountID: f.account.id,
                serviceID: item.serviceID,
                AutoRenewal(daysBefore: 5, payerID: nil)
            )
        }
        let victim = try await Self.service(f)
        try await Self.fund(f, "25")
        f.clock.advance(by: .seconds(3 * 86_400 + 60))
        #expect(try await f.store.dueAutoRenewals(limit: 100) == [victim.id])
        guard case .renewed = try await Self.attempt(f) else {
            Issue.record("the due service was not renewed")
            return
        }
    }

    @Test(arguments: Backend.allCases)
    func withoutMoneyOrMethodItFailsLoudlyAndRetriesUntilExpiry(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let service = try await Self.service(f)
        f.clock.advance(by: .seconds(3 * 86_400 + 1))
        var failures = 0
        while f.clock.nowMs < service.expiresAtMs {
            if case .failed = try await Self.attempt(f) { failures += 1 }
            #expect(try await Self.attempt(f) == .notDue, "one attempt per retry interval")
            f.clock.advance(by: Self.retry)
        }
        #expect(failures == 7, "one attempt a day for the 7 days before expiry")
        let errors = try await Self.notifications(f).filter { $0.title == "Automatic renewal failed" }
        #expect(errors.count == 7)
        #expect(errors.allSatisfy { $0.severity == .error && $0.body.contains("does not cover 10.00 USD") })
        #expect(errors.contains { $0.body.contains("no further attempt") })
        // Expired: no more attempts, nothing renewed, nothing debited.
        #expect(try await f.store.dueAutoRenewals(limit: 10) == [])
        #expect(try await Self.stored(f).expiresAtMs == service.expiresAtMs)
        #expect(try await f.checkInvariants() == [])
    }

    @Test(arguments: Backend.allCases)
    func aRenewalByHandWhileTheChargeRunsIsNotDoubled(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        _ = try await f.confirmedMethod()
        let service = try await Self.service(f, payer: f.payer.id)
        f.clock.advance(by: .seconds(4 * 86_400))
        guard case .charging(let automatic, let payment) = try await Self.attempt(f) else {
            Issue.record("no charge")
            return
        }
        // Renewing by hand meanwhile is refused: both would renew a period each.
        await #expect(throws: BillingError.self) {
            try await f.store.renew(
                accountID: f.account.id,
                payerID: f.payer.id,
                items: [RenewalItem(serviceID: service.id, periods: 1)],
                option: .invoice,
                expectedTotal: nil,
                expectedToPay: nil,
                idempotencyKey: nil
            )
        }
        // The provisioning service moves the expiry itself (a renewal elsewhere) before the charge ends.
        var moved = service
        moved.expiresAtMs += 30 * Self.day
        _ = try await f.store.upsertRenewableService(moved, keepingAutoRenewal: true)
        _ = try await f.store.transition(paymentID: payment.id, .paid)
        #expect(try await f.store.renewalOrder(automatic.id).status == .cancelled)
        #expect(try await Self.stored(f).expiresAtMs == service.expiresAtMs + 30 * Self.day, "one period, not two")
        #expect(try await f.balanceMinor() == 10_00, "the 1.00 held and the 9.00 charged stay on the balance")
        #expect(try await Self.notifications(f).contains { $0.title == "Automatic renewal not needed" })
        #expect(try await f.checkInvariants() == [])
    }
}
