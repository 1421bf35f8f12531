import BillingCore
import BillingStorage
import Testing

@Suite struct PaymentTransitionTests {
    @Test(arguments: Backend.allCases)
    func paidTopUpCreditsOnceAndConfirmsTheSavedMethod(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let payment = try await f.topUp(
            "100.50",
            .paymentSystem(.stripe, saveMethod: true, returnURL: "https://panel.example/payments")
        )
        #expect(payment.status == .new)
        let pending = try await f.store.paymentMethod(try #require(payment.savedPaymentMethodID))
        #expect(pending.status == .pending)

        let result = try await f.store.transition(
            paymentID: payment.id,
            .paid(savedMethodReference: "pm_1", displayName: "Visa •••• 4242")
        )
        guard case .applied(let paid) = result else {
            Issue.record("expected applied, got \(result)")
            return
        }
        #expect(paid.status == .paid)
        #expect(try await f.balanceMinor() == 100_50)
        let method = try await f.store.paymentMethod(pending.id)
        #expect(method.status == .confirmed)
        #expect(method.isDefault)
        #expect(method.providerReference == "pm_1")

        // Again, as a late webhook would: nothing more happens.
        let again = try await f.store.transition(paymentID: payment.id, .paid)
        #expect(again == .alreadyFinal(paid))
        #expect(try await f.balanceMinor() == 100_50)

        let kinds = try await f.store.events(after: 0, accountID: f.account.id, limit: 100).map { event -> String in
            switch event.change {
            case .paymentStatusChanged(let p, let previous):
                return "payment \(previous?.rawValue ?? "-")->\(p.status.rawValue)"
            case .methodStatusChanged(let m, let previous):
                return "method \(previous?.rawValue ?? "-")->\(m.status.rawValue)"
            case .balanceChanged(let balance, let delta, _, _):
                return "balance \(delta.amountMinorUnits)=\(balance.amountMinorUnits)"
            case .notification: return "notification"
            case .paymentReversed(let r): return "reversed \(r.kind.rawValue) \(r.amount.amountMinorUnits)"
            }
        }
        #expect(
            kinds == [
                "payment -->new", "method -->pending", "payment new->paid", "balance 10050=10050",
                "method pending->confirmed",
            ]
        )
        #expect(try await f.checkInvariants() == [])
    }

    @Test(arguments: Backend.allCases)
    func cancelledTopUpFailsTheMethodAndNotifies(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let payment = try await f.topUp(
            "20",
            .paymentSystem(.paypal, saveMethod: true, returnURL: "https://panel.example/payments")
        )
        _ = try await f.store.transition(paymentID: payment.id, .cancelled("declined by the bank"))
        let cancelled = try await f.store.payment(payment.id)
        #expect(cancelled.status == .cancelled)
        #expect(cancelled.failureReason == "declined by the bank")
        #expect(try await f.store.paymentMethod(payment.savedPaymentMethodID!).status == .failed)
        #expect(try await f.balanceMinor() == 0)
        let notifications = try await f.store.notifications(accountID: f.account.id, pageSize: 10, pageToken: nil).items
        #expect(notifications.count == 1)
        #expect(notifications.first?.severity == .error)
        #expect(notifications.first?.paymentID == payment.id)
        #expect(try await f.checkInvariants() == [])
    }

    @Test(arguments: Backend.allCases)
    func aFinalPaymentCannotMoveToTheOtherStatus(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let payment = try await f.topUp("10")
        _ = try await f.store.transition(paymentID: payment.id, .paid)
        await #expect(throws: BillingError.invalidTransition(paymentID: payment.id, from: .paid, to: .cancelled)) {
            try await f.store.transition(paymentID: payment.id, .cancelled("late"))
        }
        #expect(try await f.balanceMinor() == 10_00)
    }

    @Test(arguments: Backend.allCases)
    func manyTasksPayingOnePaymentCreditItOnce(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let payment = try await f.topUp("500")
        let results = try await withThrowingTaskGroup(of: TransitionResult.self) { group in
            for _ in 0..<64 {
                group.addTask { try await f.store.transition(paymentID: payment.id, .paid) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.filter { if case .applied = $0 { return true } else { return false } }.count == 1)
        #expect(try await f.balanceMinor() == 500_00)
        #expect(try await f.store.ledgerEntryCount(paymentID: payment.id) == 1)
        #expect(try await f.checkInvariants() == [])
    }

    @Test(arguments: Backend.allCases)
    func sameIdempotencyKeyGivesOnePayment(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let first = try await f.topUp("100", key: "key-1")
        let second = try await f.topUp("100", key: "key-1")
        #expect(first.id == second.id)
        await #expect(throws: BillingError.idempotencyKeyReused("key-1")) {
            try await f.topUp("200", key: "key-1")
        }
        let page = try await f.store.listPayments(PaymentQuery(accountID: f.account.id))
        #expect(page.items.count == 1)
    }

    @Test(arguments: Backend.allCases)
    func savedMethodTopUpChargesAConfirmedMethodOnly(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let method = try await f.confirmedMethod()
        let payment = try await f.topUp("50", .savedMethod(id: method.id))
        #expect(payment.paymentMethodID == method.id)
        #expect(payment.system == .stripe)

        let pendingPayment = try await f.topUp(
            "5",
            .paymentSystem(.stripe, saveMethod: true, returnURL: "https://panel.example/p")
        )
        await #expect(throws: BillingError.self) {
            try await f.topUp("50", .savedMethod(id: pendingPayment.savedPaymentMethodID!))
        }
        _ = try await f.store.removeMethod(method.id)
        await #expect(throws: BillingError.self) { try await f.topUp("50", .savedMethod(id: method.id)) }
    }

    @Test(arguments: Backend.allCases)
    func invoiceStaysNewUntilSettled(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let invoice = try await f.topUp("1000", .invoice)
        // The issuer's series: numbered in order (InvoiceTests has the rules).
        #expect(invoice.invoiceNumber == "INV-2027-000001")
        #expect(invoice.nextCheckAtMs == invoice.createdAtMs + (14 + 7) * 86_400_000, "due date plus grace")
        let second = try await f.topUp("200", .invoice)
        #expect(second.invoiceNumber == "INV-2027-000002")
        _ = try await f.store.transition(paymentID: invoice.id, .paid)
        #expect(try await f.balanceMinor() == 1000_00)
    }

    @Test(arguments: Backend.allCases)
    func reversalsAreRecordedOnceEachAndNeverTakeMoreThanThePaymentBrought(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let payment = try await f.topUp("100.00")
        _ = try await f.store.transition(paymentID: payment.id, .paid)
        func reversal(_ kind: Reversal.Kind, _ minor: Int64, _ reference: String) -> Reversal {
            Reversal(
                paymentID: payment.id,
                kind: kind,
                amount: Money(minorUnits: minor, .usd),
                reference: reference,
                reason: "test"
            )
        }
        #expect(try await f.store.recordReversal(reversal(.refund, 30_00, "re_1")))
        #expect(try await f.store.recordReversal(reversal(.refund, 30_00, "re_1")) == false, "once per reference")
        #expect(try await f.balanceMinor() == 70_00)
        // A chargeback of the rest, and more than the rest: only what is left is taken.
        #expect(try await f.store.recordReversal(reversal(.chargeback, 100_00, "dp_1")))
        #expect(try await f.balanceMinor() == 0)
        #expect(try await f.store.recordReversal(reversal(.refund, 5_00, "re_2")) == false, "nothing left to take")
        // The dispute won gives back at most what the chargeback took.
        #expect(try await f.store.recordReversal(reversal(.chargebackWon, 500_00, "dp_1")))
        #expect(try await f.balanceMinor() == 70_00)
        #expect(try await f.store.payment(payment.id).status == .paid, "the payment stays Paid")
        #expect(try await f.checkInvariants() == [])
        // Below zero: the balance was spent, then the money is taken back;
        // the account owes, and the balance pays for nothing until a top-up covers it.
        let order = try await f.store.createMigrationOrder(
            accountID: f.account.id,
            externalID: "m-1",
            description: "server",
            serverPrice: Money(minorUnits: 70_00, .usd)
        )
        _ = try await f.store.payMigrationOrder(order.id, payerID: nil, option: .balance, idempotencyKey: nil)
        #expect(try await f.balanceMinor() == 0)
        #expect(try await f.store.recordReversal(reversal(.refund, 20_00, "re_3")))
        #expect(try await f.balanceMinor() == -20_00)
        let next = try await f.store.createMigrationOrder(
            accountID: f.account.id,
            externalID: "m-2",
            description: "server",
            serverPrice: Money(minorUnits: 1_00, .usd)
        )
        await #expect(throws: BillingError.self, "nothing is paid from a balance below zero") {
            _ = try await f.store.payMigrationOrder(next.id, payerID: nil, option: .balance, idempotencyKey: nil)
        }
        #expect(try await f.checkInvariants() == [])
        await #expect(throws: BillingError.self, "a New payment has nothing to reverse") {
            _ = try await f.store.recordReversal(
                Reversal(
                    paymentID: try await f.topUp("5.00").id,
                    kind: .refund,
                    amount: Money(minorUnits: 1_00, .usd),
                    reference: "re_x",
                    reason: ""
                )
            )
        }
        await #expect(throws: BillingError.self, "another currency") {
            _ = try await f.store.recordReversal(
                Reversal(
                    paymentID: payment.id,
                    kind: .refund,
                    amount: Money(minorUnits: 1_00, .eur),
                    reference: "re_eur",
                    reason: ""
                )
            )
        }
    }

    @Test(arguments: Backend.allCases)
    func aMethodWhoseReferenceNeverComesStaysPendingThenFails(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let payment = try await f.topUp(
            "10.00",
            .paymentSystem(.paypal, saveMethod: true, returnURL: "https://panel.example/p")
        )
        _ = try await f.store.transition(paymentID: payment.id, .paid)
        let method = try await f.store.paymentMethod(payment.savedPaymentMethodID!)
        #expect(method.status == .pending, "Paid without a method reference: not Confirmed with nothing to charge")
        #expect(try await f.store.failStalePendingMethods(paidBeforeMs: 0) == 0, "not yet past its bound")
        #expect(try await f.store.failStalePendingMethods(paidBeforeMs: Int64.max) == 1)
        #expect(try await f.store.paymentMethod(method.id).status == .failed)
        let told = try await f.store.notifications(accountID: f.account.id, pageSize: 10, pageToken: nil).items
        #expect(told.first?.title == "Saving the method failed")
        #expect(
            try await f.store.confirmLateMethod(
                paymentReference: "",
                system: .paypal,
                methodReference: "V1",
                displayName: "x"
            ) == false
        )
    }
}
