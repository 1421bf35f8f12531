import BillingCore
import Testing

/// The payment state machine with no database: every status × every outcome,
/// what each end writes, and what must be refused.
@Suite struct PaymentMachineTests {
    static let now: Int64 = 1_800_000_000_000
    static let account = Account(id: "acc", displayName: "A", currency: .usd, createdAtMs: 1_700_000_000_000)
    static let payer = Payer(id: "pyr_1", accountID: "acc", displayName: "P", email: "", createdAtMs: 1_700_000_000_000)

    static func usd(_ minor: Int64) -> Money { Money(minorUnits: minor, .usd) }

    static func payment(
        _ status: PaymentStatus = .new,
        option: PaymentOptionKind = .paymentSystem,
        purpose: PaymentPurpose = .topUp,
        amount: Int64 = 10_00
    ) -> Payment {
        Payment(
            id: "pay_1",
            accountID: "acc",
            payerID: "pyr_1",
            purpose: purpose,
            amount: usd(amount),
            status: status,
            optionKind: option,
            system: option == .invoice ? nil : .stripe,
            paymentMethodID: nil,
            savedPaymentMethodID: nil,
            providerReference: "cs_1",
            redirectURL: "",
            returnURL: "",
            invoiceNumber: nil,
            failureReason: "",
            renewalOrderID: nil,
            migrationOrderID: nil,
            createdAtMs: 1_799_000_000_000,
            updatedAtMs: 1_799_000_000_000,
            finishedAtMs: status == .new ? nil : 1_799_500_000_000,
            nextCheckAtMs: status == .new ? 1_799_000_000_000 : nil,
            checkAttempts: 2
        )
    }

    static func method(_ status: PaymentMethodStatus, id: String = "pm_1", isDefault: Bool = false) -> PaymentMethod {
        PaymentMethod(
            id: id,
            payerID: "pyr_1",
            system: .stripe,
            status: status,
            isDefault: isDefault,
            displayName: status == .pending ? "Stripe (pending)" : "Visa •••• 4242",
            providerReference: status == .pending ? "" : "cus_1/pm_9",
            savedWithPaymentID: "pay_0",
            createdAtMs: 1_700_000_000_000,
            updatedAtMs: 1_700_000_000_000
        )
    }

    static let outcomes: [(String, TransitionOutcome)] = {
        var unusable = TransitionOutcome.cancelled("card detached")
        unusable.chargedMethodUnusable = true
        return [
            ("paid", .paid),
            ("paid saving a method", .paid(savedMethodReference: "cus_1/pm_2", displayName: "Visa •••• 1111")),
            ("declined", .cancelled("card declined")),
            ("cancelled by the payer", .cancelled("changed my mind", by: .payer)),
            ("cancelled by support", .cancelled("duplicate", by: .support)),
            ("charged method unusable", unusable),
        ]
    }()

    // MARK: Every status × every outcome

    @Test(arguments: PaymentStatus.allCases)
    func everyStatusMeetsEveryOutcome(_ status: PaymentStatus) throws {
        for (name, outcome) in Self.outcomes {
            let context = PaymentContext(
                payment: Self.payment(status),
                account: Self.account,
                funds: Funds(balance: Self.usd(0))
            )
            switch status {
            case .new:
                let change = try PaymentMachine.finish(context, outcome, now: Self.now)
                guard case .applied(let after) = change.result else {
                    Issue.record("\(name): not applied")
                    continue
                }
                #expect(after.status == outcome.target, "\(name)")
                #expect(
                    after.finishedAtMs == Self.now && after.updatedAtMs == Self.now && after.nextCheckAtMs == nil,
                    "\(name)"
                )
                #expect(
                    change.effects.first == .finishPayment(after),
                    "\(name): the compare-and-set on New comes first"
                )
                #expect(
                    change.effects.filter { if case .finishPayment = $0 { return true } else { return false } }.count
                        == 1
                )
            case .paid, .cancelled:
                if status == outcome.target {
                    let change = try PaymentMachine.finish(context, outcome, now: Self.now)
                    #expect(change.result == .alreadyFinal(context.payment), "\(name)")
                    #expect(change.effects.isEmpty, "\(name): a repeat writes nothing")
                } else {
                    #expect(
                        throws: BillingError.invalidTransition(paymentID: "pay_1", from: status, to: outcome.target),
                        "\(name)"
                    ) {
                        try PaymentMachine.finish(context, outcome, now: Self.now)
                    }
                }
            }
        }
    }

    @Test func aFailureReasonFromOutsideIsBounded() {
        let context = PaymentContext(payment: Self.payment(), account: Self.account, funds: Funds(balance: Self.usd(0)))
        #expect(throws: BillingError.self) {
            try PaymentMachine.finish(context, .cancelled(String(repeating: "x", count: 501)), now: Self.now)
        }
        #expect(throws: BillingError.self) {
            try PaymentMachine.finish(context, .cancelled("bell\u{7}"), now: Self.now)
        }
    }

    // MARK: Paid

    @Test func paidCreditsOnceUnderThePaymentsKeyWithItsBalanceEvent() throws {
        let context = PaymentContext(
            payment: Self.payment(),
            account: Self.account,
            funds: Funds(balance: Self.usd(-3_00))
        )
        let change = try PaymentMachine.finish(context, .paid, now: Self.now)
        let entries = change.effects.ledgerEntries
        #expect(entries.count == 1)
        #expect(entries.first?.key == "credit:pay_1")
        #expect(entries.first?.amount == Self.usd(10_00))
        #expect(entries.first?.balanceBefore == Self.usd(-3_00) && entries.first?.balanceAfter == Self.usd(7_00))
        #expect(
            change.effects.events.contains(
                .balanceChanged(
                    balance: Self.usd(7_00),
                    delta: Self.usd(10_00),
                    paymentID: "pay_1",
                    reference: "payment pay_1"
                )
            )
        )
        #expect(change.effects.notifications.isEmpty, "a payment that went through needs no notice")
    }

    @Test func aMethodSavedWithAPaidPaymentIsConfirmedAndBecomesTheOnlyDefault() throws {
        var payment = Self.payment()
        payment.savedPaymentMethodID = "pm_1"
        for hasDefault in [false, true] {
            let context = PaymentContext(
                payment: payment,
                account: Self.account,
                funds: Funds(balance: Self.usd(0)),
                savedMethod: Self.method(.pending),
                payerHasDefaultMethod: hasDefault
            )
            let change = try PaymentMachine.finish(
                context,
                .paid(savedMethodReference: "cus_1/pm_2", displayName: "Visa •••• 1111"),
                now: Self.now
            )
            let updates = change.effects.methodUpdates
            #expect(updates.count == 1)
            #expect(updates.first?.method.status == .confirmed && updates.first?.expected == .pending)
            #expect(
                updates.first?.method.providerReference == "cus_1/pm_2"
                    && updates.first?.method.displayName == "Visa •••• 1111"
            )
            #expect(updates.first?.method.isDefault == !hasDefault, "default only when the payer has none")
            #expect(
                change.effects.events.contains {
                    if case .methodStatusChanged(let m, .pending?) = $0 {
                        return m.status == .confirmed
                    } else {
                        return false
                    }
                }
            )
        }
    }

    @Test func aMethodWithoutItsReferenceStaysPendingWhenThePaymentIsPaid() throws {
        var payment = Self.payment()
        payment.savedPaymentMethodID = "pm_1"
        let context = PaymentContext(
            payment: payment,
            account: Self.account,
            funds: Funds(balance: Self.usd(0)),
            savedMethod: Self.method(.pending)
        )
        let change = try PaymentMachine.finish(context, .paid, now: Self.now)
        #expect(
            change.effects.methodUpdates.isEmpty,
            "a Confirmed method must be chargeable: it waits for its reference"
        )
    }

    @Test func aMigrationPaidThroughAPaymentIsCreditedThenDebitedAndPaid() throws {
        var payment = Self.payment(purpose: .migration, amount: 50_00)
        payment.migrationOrderID = "mo_1"
        let order = MigrationOrder(
            id: "mo_1",
            accountID: "acc",
            externalID: "ext",
            description: "",
            serverPrice: Self.usd(50_00),
            status: .paymentPending,
            paymentID: "pay_1",
            createdAtMs: 0,
            paidAtMs: nil
        )
        let context = PaymentContext(
            payment: payment,
            account: Self.account,
            funds: Funds(balance: Self.usd(5_00)),
            migrationOrder: order
        )
        let change = try PaymentMachine.finish(context, .paid, now: Self.now)
        #expect(change.effects.ledgerEntries.map(\.key) == ["credit:pay_1", "debit:mo_1"])
        #expect(
            change.effects.ledgerEntries.last?.balanceAfter == Self.usd(5_00),
            "credit, then debit: the balance is back"
        )
        var paid = order
        paid.status = .paid
        paid.paidAtMs = Self.now
        #expect(change.effects.contains(.updateMigrationOrder(paid, expected: .paymentPending)))
    }

    @Test func anOrderTheCreditCannotCoverIsReleasedAndTheMoneyStaysOnTheBalance() throws {
        // The account owes 20.00 after a chargeback; 50.00 arrives for a 50.00 order.
        var payment = Self.payment(purpose: .migration, amount: 50_00)
        payment.migrationOrderID = "mo_1"
        let order = MigrationOrder(
            id: "mo_1",
            accountID: "acc",
            externalID: "ext",
            description: "",
            serverPrice: Self.usd(50_00),
            status: .paymentPending,
            paymentID: "pay_1",
            createdAtMs: 0,
            paidAtMs: nil
        )
        let change = try PaymentMachine.finish(
            PaymentContext(
                payment: payment,
                account: Self.account,
                funds: Funds(balance: Self.usd(-20_00)),
                migrationOrder: order
            ),
            .paid,
            now: Self.now
        )
        #expect(change.result.payment.status == .paid, "the money arrived: the payment is Paid, never left New")
        #expect(change.effects.ledgerEntries.map(\.key) == ["credit:pay_1"])
        var released = order
        released.status = .awaitingPayment
        released.paymentID = nil
        #expect(change.effects.contains(.updateMigrationOrder(released, expected: .paymentPending)))
        #expect(change.effects.notifications.first?.title == "Order not paid")

        var renewal = Self.payment(purpose: .renewal, amount: 50_00)
        renewal.renewalOrderID = "ro_1"
        let renewalOrder = RenewalOrder(
            id: "ro_1",
            accountID: "acc",
            lines: [
                RenewalLine(
                    serviceID: "svc",
                    periods: 1,
                    amount: Self.usd(50_00),
                    newExpiresAtMs: 0
                )
            ],
            total: Self.usd(50_00),
            fromBalance: Self.usd(0),
            status: .awaitingPayment,
            paymentID: "pay_1",
            createdAtMs: 0,
            completedAtMs: nil
        )
        let renewed = try PaymentMachine.finish(
            PaymentContext(
                payment: renewal,
                account: Self.account,
                funds: Funds(balance: Self.usd(-1)),
                renewalOrder: renewalOrder
            ),
            .paid,
            now: Self.now
        )
        #expect(renewed.effects.ledgerEntries.map(\.key) == ["credit:pay_1"])
        #expect(renewed.effects.notifications.first?.title == "Renewal not completed")
        #expect(
            renewed.effects.contains {
                if case .updateRenewalOrder(let o, .awaitingPayment) = $0 {
                    return o.status == .cancelled
                } else {
                    return false
                }
            }
        )
    }

    @Test func aRenewalPaidThroughAPaymentExtendsEveryServiceFromItsExpiryOrFromNow() throws {
        var payment = Self.payment(purpose: .renewal, amount: 30_00)
        payment.renewalOrderID = "ro_1"
        let day = Timestamps.dayMs
        let services = [
            RenewableService(
                id: "live",
                accountID: "acc",
                displayName: "L",
                pricePerPeriod: Self.usd(10_00),
                periodDays: 30,
                expiresAtMs: Self.now + 5 * day,
                updatedAtMs: 0
            ),
            RenewableService(
                id: "lapsed",
                accountID: "acc",
                displayName: "X",
                pricePerPeriod: Self.usd(10_00),
                periodDays: 30,
                expiresAtMs: Self.now - 5 * day,
                updatedAtMs: 0
            ),
        ]
        let order = RenewalOrder(
            id: "ro_1",
            accountID: "acc",
            lines: [
                RenewalLine(serviceID: "live", periods: 2, amount: Self.usd(20_00), newExpiresAtMs: 0),
                RenewalLine(serviceID: "lapsed", periods: 1, amount: Self.usd(10_00), newExpiresAtMs: 0),
            ],
            total: Self.usd(30_00),
            fromBalance: Self.usd(0),
            status: .awaitingPayment,
            paymentID: "pay_1",
            createdAtMs: 0,
            completedAtMs: nil
        )
        let change = try PaymentMachine.finish(
            PaymentContext(
                payment: payment,
                account: Self.account,
                funds: Funds(balance: Self.usd(0)),
                renewalOrder: order,
                renewedServices: services
            ),
            .paid,
            now: Self.now
        )
        let saved = change.effects.compactMap { if case .saveService(let s) = $0 { return s } else { return nil } }
        #expect(saved.map(\.expiresAtMs) == [Self.now + 65 * day, Self.now + 30 * day])
        #expect(
            change.effects.contains {
                if case .updateRenewalOrder(let o, .awaitingPayment) = $0 {
                    return o.status == .completed
                        && o.lines.map(\.newExpiresAtMs) == [Self.now + 65 * day, Self.now + 30 * day]
                } else {
                    return false
                }
            }
        )
    }

    @Test func aRenewalWhoseServiceIsGoneIsRefusedWhole() {
        var payment = Self.payment(purpose: .renewal, amount: 10_00)
        payment.renewalOrderID = "ro_1"
        let order = RenewalOrder(
            id: "ro_1",
            accountID: "acc",
            lines: [RenewalLine(serviceID: "gone", periods: 1, amount: Self.usd(10_00), newExpiresAtMs: 0)],
            total: Self.usd(10_00),
            fromBalance: Self.usd(0),
            status: .awaitingPayment,
            paymentID: "pay_1",
            createdAtMs: 0,
            completedAtMs: nil
        )
        #expect(throws: BillingError.notFound("service gone not found")) {
            try PaymentMachine.finish(
                PaymentContext(
                    payment: payment,
                    account: Self.account,
                    funds: Funds(balance: Money.zero(.usd)),
                    renewalOrder: order
                ),
                .paid,
                now: Self.now
            )
        }
    }

    // MARK: Cancelled

    @Test(arguments: [TransitionOutcome.Canceller.paymentSystem, .payer, .support])
    func aCancelTellsThePersonWhoEndedIt(_ canceller: TransitionOutcome.Canceller) throws {
        let change = try PaymentMachine.finish(
            PaymentContext(payment: Self.payment(), account: Self.account, funds: Funds(balance: Money.zero(.usd))),
            .cancelled("because", by: canceller),
            now: Self.now
        )
        let notification = try #require(change.effects.notifications.first)
        switch canceller {
        case .paymentSystem:
            #expect(notification.severity == .error && notification.title == "Payment failed")
            #expect(notification.body == "Payment of 10.00 USD was cancelled: because")
        case .payer:
            #expect(notification.severity == .info && notification.title == "Cancelled by you")
        case .support:
            #expect(notification.severity == .info && notification.title == "Cancelled by support")
        }
        #expect(notification.paymentID == "pay_1")
        #expect(change.effects.ledgerEntries.isEmpty, "a cancelled payment moves no money")
        #expect(change.effects.events.contains(.notification(notification)))
    }

    @Test func aCancelFailsTheMethodBeingSavedAndSaysItWasNeverSaved() throws {
        var payment = Self.payment()
        payment.savedPaymentMethodID = "pm_1"
        let change = try PaymentMachine.finish(
            PaymentContext(
                payment: payment,
                account: Self.account,
                funds: Funds(balance: Money.zero(.usd)),
                savedMethod: Self.method(.pending)
            ),
            .cancelled("declined"),
            now: Self.now
        )
        let update = try #require(change.effects.methodUpdates.first)
        #expect(update.method.status == .failed && update.expected == .pending)
        #expect(update.method.displayName == "Stripe (not saved)")
    }

    @Test func onlyARefusedChargedMethodFails() throws {
        var payment = Self.payment(option: .savedMethod)
        payment.paymentMethodID = "pm_1"
        let context = PaymentContext(
            payment: payment,
            account: Self.account,
            funds: Funds(balance: Money.zero(.usd)),
            chargedMethod: Self.method(.confirmed, isDefault: true)
        )
        #expect(
            try PaymentMachine.finish(context, .cancelled("insufficient funds"), now: Self.now).effects.methodUpdates
                .isEmpty,
            "a decline says nothing about the card itself"
        )
        var unusable = TransitionOutcome.cancelled("detached")
        unusable.chargedMethodUnusable = true
        let update = try #require(
            try PaymentMachine.finish(context, unusable, now: Self.now).effects.methodUpdates.first
        )
        #expect(update.method.status == .failed && !update.method.isDefault && update.expected == .confirmed)
    }

    @Test func aCancelReleasesItsOrders() throws {
        var payment = Self.payment(purpose: .migration)
        payment.migrationOrderID = "mo_1"
        let order = MigrationOrder(
            id: "mo_1",
            accountID: "acc",
            externalID: "e",
            description: "",
            serverPrice: Self.usd(10_00),
            status: .paymentPending,
            paymentID: "pay_1",
            createdAtMs: 0,
            paidAtMs: nil
        )
        let change = try PaymentMachine.finish(
            PaymentContext(
                payment: payment,
                account: Self.account,
                funds: Funds(balance: Money.zero(.usd)),
                migrationOrder: order
            ),
            .cancelled("declined"),
            now: Self.now
        )
        var released = order
        released.status = .awaitingPayment
        released.paymentID = nil
        #expect(change.effects.contains(.updateMigrationOrder(released, expected: .paymentPending)))
    }

    // MARK: Recording

    @Test func recordingRefusesWhatThePayerMayNotUse() {
        let other = Payer(id: "pyr_2", accountID: "other", displayName: "O", email: "", createdAtMs: 0)
        func record(
            _ option: PaymentOption,
            payer: Payer? = Self.payer,
            method: PaymentMethod? = nil,
            amount: Money = Self.usd(10_00)
        ) throws {
            _ = try PaymentMachine.record(
                purpose: .topUp,
                amount: amount,
                account: Self.account,
                payerID: payer?.id ?? "pyr_x",
                payer: payer,
                option: option,
                chargedMethod: method,
                limits: .seedDefault,
                invoice: InvoiceIssue(number: InvoiceNumber(series: "INV-", sequence: 1), terms: .development),
                now: Self.now
            )
        }
        #expect(throws: BillingError.notFound("payer pyr_2 not found")) { try record(.invoice, payer: other) }
        #expect(throws: BillingError.notFound("payer pyr_x not found")) { try record(.invoice, payer: nil) }
        #expect(throws: BillingError.notFound("payment method pm_1 not found")) { try record(.savedMethod(id: "pm_1")) }
        var foreign = Self.method(.confirmed)
        foreign.payerID = "pyr_2"
        #expect(throws: BillingError.notFound("payment method pm_1 not found")) {
            try record(.savedMethod(id: "pm_1"), method: foreign)
        }
        for status in [PaymentMethodStatus.pending, .failed, .removed] {
            #expect(throws: BillingError.self) { try record(.savedMethod(id: "pm_1"), method: Self.method(status)) }
        }
        #expect(throws: BillingError.self) { try record(.balance) }
        #expect(throws: BillingError.self) { try record(.invoice, amount: Self.usd(49)) }
        #expect(throws: BillingError.self) { try record(.invoice, amount: Money(minorUnits: 10_00, .eur)) }
        #expect(throws: BillingError.self) {
            try record(.paymentSystem(.stripe, saveMethod: false, returnURL: "javascript:alert(1)"))
        }
    }

    @Test func recordingWritesTheMethodBeforeThePaymentThatNamesIt() throws {
        let change = try PaymentMachine.record(
            purpose: .topUp,
            amount: Self.usd(10_00),
            account: Self.account,
            payerID: "pyr_1",
            payer: Self.payer,
            option: .paymentSystem(.sandbox, saveMethod: true, returnURL: "https://panel.example/p"),
            chargedMethod: nil,
            limits: .seedDefault,
            invoice: nil,
            now: Self.now
        )
        guard case .insertMethod(let method) = change.effects[0], case .insertPayment(let payment) = change.effects[1]
        else {
            Issue.record("effects out of order: \(change.effects)")
            return
        }
        #expect(payment.savedPaymentMethodID == method.id && method.savedWithPaymentID == payment.id)
        #expect(method.status == .pending && method.displayName == "Sandbox (pending)")
        #expect(payment.status == .new && payment.nextCheckAtMs == Self.now)
        #expect(change.effects.events.count == 2)
    }

    @Test func anInvoiceIsIssuedWithItsPaymentAndLookedAtOnlyToVoidIt() throws {
        var terms = InvoiceTerms.development
        terms.dueDays = 10
        terms.graceDays = 3
        let change = try PaymentMachine.record(
            purpose: .topUp,
            amount: Self.usd(10_00),
            account: Self.account,
            payerID: "pyr_1",
            payer: Self.payer,
            option: .invoice,
            chargedMethod: nil,
            limits: .seedDefault,
            invoice: InvoiceIssue(number: InvoiceNumber(series: "INV-2027-", sequence: 42), terms: terms),
            now: Self.now
        )
        #expect(change.result.nextCheckAtMs == Self.now + 13 * 86_400_000, "due date plus grace")
        #expect(change.result.invoiceNumber == "INV-2027-000042")
        #expect(change.result.system == nil)
        let invoices = change.effects.compactMap { effect -> Invoice? in
            if case .insertInvoice(let invoice) = effect { return invoice }
            return nil
        }
        #expect(invoices.count == 1)
        #expect(invoices.first?.dueAtMs == Self.now + 10 * 86_400_000)
        #expect(invoices.first?.payerName == Self.payer.displayName && invoices.first?.amount == Self.usd(10_00))
        #expect(invoices.first?.issuer == terms.issuer)
        // Without an issue (a store that offers no invoices) an invoice payment is refused.
        #expect(throws: BillingError.self) {
            try PaymentMachine.record(
                purpose: .topUp,
                amount: Self.usd(10_00),
                account: Self.account,
                payerID: "pyr_1",
                payer: Self.payer,
                option: .invoice,
                chargedMethod: nil,
                limits: .seedDefault,
                invoice: nil,
                now: Self.now
            )
        }
    }

    @Test func attachingNeedsANewPayment() throws {
        #expect(
            try PaymentMachine.attach(
                Self.payment(),
                reference: "cs_2",
                redirectURL: "https://pay.example",
                now: Self.now
            ).result.providerReference == "cs_2"
        )
        for status in [PaymentStatus.paid, .cancelled] {
            #expect(throws: BillingError.self) {
                try PaymentMachine.attach(Self.payment(status), reference: "cs_2", redirectURL: "", now: Self.now)
            }
        }
        // The same answer twice (caller and poller, one idempotency key): written once.
        let first = try PaymentMachine.attach(
            Self.payment(),
            reference: "cs_2",
            redirectURL: "https://pay.example",
            now: Self.now
        )
        #expect(first.effects.count == 1)
        let again = try PaymentMachine.attach(
            first.result,
            reference: "cs_2",
            redirectURL: "https://pay.example",
            now: Self.now + 5
        )
        #expect(again.effects.isEmpty)
        #expect(again.result == first.result)
    }

    // MARK: Generated contexts

    /// Seeded: any context and outcome, the ledger entries chain the balance,
    /// Paid credits exactly once, and every event belongs to the account.
    @Test(arguments: 0..<200)
    func everyEndKeepsTheBooksConsistent(seed: Int) throws {
        var random = Seeded(UInt64(seed))
        var payment = Self.payment(
            option: [.invoice, .savedMethod, .paymentSystem].randomElement(using: &random)!,
            amount: Int64.random(in: 50...15_000_00, using: &random)
        )
        var context = PaymentContext(
            payment: payment,
            account: Self.account,
            funds: Funds(balance: Self.usd(Int64.random(in: -20_000_00...20_000_00, using: &random)))
        )
        if Bool.random(using: &random) {
            payment.savedPaymentMethodID = "pm_1"
            context.savedMethod = Self.method([.pending, .failed].randomElement(using: &random)!)
            context.payerHasDefaultMethod = Bool.random(using: &random)
        }
        if Bool.random(using: &random) {
            payment.migrationOrderID = "mo_1"
            context.migrationOrder = MigrationOrder(
                id: "mo_1",
                accountID: "acc",
                externalID: "e",
                description: "",
                serverPrice: payment.amount,
                status: [.awaitingPayment, .paymentPending, .paid].randomElement(using: &random)!,
                paymentID: Bool.random(using: &random) ? "pay_1" : "pay_other",
                createdAtMs: 0,
                paidAtMs: nil
            )
        }
        context.payment = payment
        let (name, outcome) = Self.outcomes.randomElement(using: &random)!
        let change = try PaymentMachine.finish(context, outcome, now: Self.now)
        var balance = context.funds.balance
        for entry in change.effects.ledgerEntries {
            #expect(entry.balanceBefore == balance, "seed \(seed) \(name)")
            balance = try balance.adding(entry.amount)
            #expect(entry.balanceAfter == balance, "seed \(seed) \(name)")
        }
        let credits = change.effects.ledgerEntries.filter { $0.key == "credit:pay_1" }
        #expect(credits.count == (outcome.target == .paid ? 1 : 0), "seed \(seed) \(name)")
        #expect(
            change.effects.allSatisfy {
                if case .event(let account, let at, _) = $0 {
                    return account == "acc" && at == Self.now
                } else {
                    return true
                }
            }
        )
        // The watchers learn of every balance move.
        #expect(
            change.effects.events.filter { if case .balanceChanged = $0 { return true } else { return false } }.count
                == change.effects.ledgerEntries.count
        )
    }
}

/// SplitMix64: the same seed, the same contexts.
struct Seeded: RandomNumberGenerator {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension [Effect] {
    var ledgerEntries: [LedgerEntry] {
        compactMap { if case .ledger(let entry) = $0 { return entry } else { return nil } }
    }
    var events: [Event.Change] {
        compactMap { if case .event(_, _, let change) = $0 { return change } else { return nil } }
    }
    var notifications: [Notification] {
        compactMap { if case .insertNotification(let n) = $0 { return n } else { return nil } }
    }
    var methodUpdates: [(method: PaymentMethod, expected: PaymentMethodStatus)] {
        compactMap {
            if case .updateMethod(let method, let expected) = $0 { return (method, expected) } else { return nil }
        }
    }
}
