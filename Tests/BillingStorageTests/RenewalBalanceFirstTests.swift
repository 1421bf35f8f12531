import BillingCore
import BillingStorage
import Testing

/// Renewals take the available balance first and charge only the rest:
/// every combination of enough / part / no balance × each way to pay, each
/// ending Paid and Cancelled, on a real SQLite file.
@Suite struct RenewalBalanceFirstTests {
    enum Funding: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case enough, part, none
        /// The balance before renewing a total of 20.00.
        var minor: Int64 {
            switch self {
            case .enough: return 25_00
            case .part: return 8_00
            case .none: return 0
            }
        }
        var testDescription: String { rawValue }
    }

    enum Way: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case balance, invoice, savedMethod, paymentSystem
        var testDescription: String { rawValue }
    }

    enum End: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case paid, cancelled
        var testDescription: String { rawValue }
    }

    struct Setup {
        let f: StoreFixture
        let service: RenewableService
        let option: PaymentOption
        var items: [RenewalItem] { [RenewalItem(serviceID: service.id, periods: 2)] }
    }

    /// A fixture whose balance is exactly `minor`, a 10.00 service and the option for `way`.
    static func setUp(_ funding: Funding, _ way: Way, on backend: Backend) async throws -> Setup {
        let f = try await StoreFixture(backend)
        var option = PaymentOption.balance
        switch way {
        case .balance: option = .balance
        case .invoice: option = .invoice
        case .paymentSystem: option = .paymentSystem(.sandbox, saveMethod: false, returnURL: "https://panel.example/p")
        case .savedMethod: option = .savedMethod(id: try await f.confirmedMethod().id)
        }
        try await setBalance(f, funding.minor)
        let service = try await f.service("svc-vps", price: "10", name: "VPS")
        return Setup(f: f, service: service, option: option)
    }

    /// Tops up, or spends through a migration order from the balance, until the balance is `minor`.
    static func setBalance(_ f: StoreFixture, _ minor: Int64) async throws {
        let now = try await f.balanceMinor()
        if minor > now {
            let topUp = try await f.topUp(Money(minorUnits: minor - now, .usd).formatted)
            _ = try await f.store.transition(paymentID: topUp.id, .paid)
        } else if minor < now {
            let order = try await f.store.createMigrationOrder(
                accountID: f.account.id,
                externalID: "spend-\(now)",
                description: "spend",
                serverPrice: Money(minorUnits: now - minor, .usd)
            )
            _ = try await f.store.payMigrationOrder(order.id, payerID: nil, option: .balance)
        }
        #expect(try await f.balanceMinor() == minor)
    }

    static func funds(_ f: StoreFixture) async throws -> Funds {
        try await f.store.balance(accountID: f.account.id).funds
    }

    @Test(arguments: Funding.allCases, Way.allCases)
    func everyFundingWithEveryWayToPay(funding: Funding, way: Way) async throws {
        for end in End.allCases {
            for backend in Backend.allCases {
                try await run(funding, way, end, on: backend)
            }
        }
    }

    private func run(_ funding: Funding, _ way: Way, _ end: End, on backend: Backend) async throws {
        do {
            let s = try await Self.setUp(funding, way, on: backend)
            let f = s.f
            let payerID: String? = way == .balance ? nil : f.payer.id
            let quote = try await f.store.quoteRenewal(accountID: f.account.id, items: s.items, option: s.option)
            #expect(quote.total.amountMinorUnits == 20_00)
            #expect(quote.fromBalance.amountMinorUnits == min(funding.minor, 20_00), "\(funding) \(way)")
            #expect(quote.toPay.amountMinorUnits == max(0, 20_00 - funding.minor), "\(funding) \(way)")
            #expect(quote.credited.amountMinorUnits == 0)

            if way == .balance && funding != .enough {
                await #expect(
                    throws: BillingError.insufficientFunds(
                        available: Money(minorUnits: funding.minor, .usd),
                        required: quote.total
                    )
                ) {
                    try await f.store.renew(
                        accountID: f.account.id,
                        payerID: nil,
                        items: s.items,
                        option: s.option,
                        expectedTotal: quote.total,
                        expectedToPay: nil,
                        idempotencyKey: nil
                    )
                }
                #expect(try await f.balanceMinor() == funding.minor, "a refusal changes nothing")
                #expect(try await Self.funds(f).held.amountMinorUnits == 0)
                #expect(try await f.checkInvariants() == [])
                return
            }
            let (order, payment) = try await f.store.renew(
                accountID: f.account.id,
                payerID: payerID,
                items: s.items,
                option: s.option,
                expectedTotal: quote.total,
                expectedToPay: funding == .enough ? .zero(.usd) : quote.toPay,
                idempotencyKey: nil
            )
            if funding == .enough {
                // The balance covers it: completed at once whatever the option, no payment.
                #expect(payment == nil, "\(way)")
                #expect(order.status == .completed)
                #expect(order.fromBalance.amountMinorUnits == 20_00)
                #expect(try await f.balanceMinor() == 5_00)
                #expect(try await Self.funds(f).held.amountMinorUnits == 0)
                #expect(try await f.checkInvariants() == [])
                return
            }
            let made = try #require(payment, "\(funding) \(way)")
            #expect(made.amount.amountMinorUnits == 20_00 - funding.minor, "only the rest is charged")
            #expect(made.purpose == .renewal)
            #expect(order.status == .awaitingPayment)
            #expect(order.fromBalance.amountMinorUnits == funding.minor)
            let holding = try await Self.funds(f)
            #expect(holding.balance.amountMinorUnits == funding.minor, "nothing debited yet")
            #expect(holding.held.amountMinorUnits == funding.minor)
            #expect(holding.available.amountMinorUnits == 0)

            switch end {
            case .paid:
                _ = try await f.store.transition(paymentID: made.id, .paid)
                let completed = try await f.store.renewalOrder(order.id)
                #expect(completed.status == .completed)
                #expect(completed.lines.first?.newExpiresAtMs == s.service.expiresAtMs + 60 * 86_400_000)
                #expect(try await f.balanceMinor() == 0, "the rest credited, then one debit of the total")
                #expect(try await f.store.ledgerEntryCount(paymentID: made.id) == 1)
            case .cancelled:
                _ = try await f.store.transition(paymentID: made.id, .cancelled("declined"))
                #expect(try await f.store.renewalOrder(order.id).status == .cancelled)
                #expect(try await f.balanceMinor() == funding.minor, "nothing debited")
                #expect(
                    try await f.store.renewableServices(accountID: f.account.id).first?.expiresAtMs
                        == s.service.expiresAtMs
                )
            }
            let after = try await Self.funds(f)
            #expect(after.held.amountMinorUnits == 0, "the hold ends with the payment")
            #expect(after.available == after.balance)
            // The same end again (a late webhook) writes nothing.
            _ = try await f.store.transition(paymentID: made.id, end == .paid ? .paid : .cancelled("again"))
            #expect(try await Self.funds(f) == after)
            #expect(try await f.checkInvariants() == [])
        }
    }

    @Test(arguments: Backend.allCases)
    func aRestBelowThePaymentSystemsMinimumIsPaidAsTheMinimumAndTheExcessCredited(_ backend: Backend) async throws {
        let s = try await Self.setUp(.none, .paymentSystem, on: backend)
        let f = s.f
        try await Self.setBalance(f, 19_80)
        let quote = try await f.store.quoteRenewal(accountID: f.account.id, items: s.items, option: s.option)
        #expect(quote.fromBalance.amountMinorUnits == 19_80)
        #expect(quote.toPay.amountMinorUnits == 50, "Sandbox's minimum of 0.50, not 0.20")
        #expect(quote.credited.amountMinorUnits == 30)
        #expect(quote.note.contains("at least 0.50 USD"))
        // Without an option (or by invoice) no minimum applies.
        let plain = try await f.store.quoteRenewal(accountID: f.account.id, items: s.items, option: nil)
        #expect(plain.toPay.amountMinorUnits == 20 && plain.note.isEmpty)
        let (order, payment) = try await f.store.renew(
            accountID: f.account.id,
            payerID: f.payer.id,
            items: s.items,
            option: s.option,
            expectedTotal: quote.total,
            expectedToPay: quote.toPay,
            idempotencyKey: nil
        )
        #expect(payment?.amount.amountMinorUnits == 50)
        #expect(order.fromBalance.amountMinorUnits == 19_80)
        _ = try await f.store.transition(paymentID: try #require(payment).id, .paid)
        #expect(try await f.store.renewalOrder(order.id).status == .completed)
        #expect(try await f.balanceMinor() == 30, "19.80 + 0.50 - 20.00: the excess stays on the balance")
        #expect(try await f.checkInvariants() == [])
    }

    @Test(arguments: Backend.allCases)
    func aHeldPartCannotBeSpentTwice(_ backend: Backend) async throws {
        let s = try await Self.setUp(.part, .invoice, on: backend)
        let f = s.f
        let (held, invoice) = try await f.store.renew(
            accountID: f.account.id,
            payerID: f.payer.id,
            items: s.items,
            option: .invoice,
            expectedTotal: nil,
            expectedToPay: nil,
            idempotencyKey: nil
        )
        #expect(held.fromBalance.amountMinorUnits == 8_00)
        // The 8.00 is held: neither a migration nor another renewal from the balance may take it.
        let migration = try await f.store.createMigrationOrder(
            accountID: f.account.id,
            externalID: "mig-held",
            description: "server",
            serverPrice: try f.usd("5")
        )
        await #expect(
            throws: BillingError.insufficientFunds(available: try f.usd("0"), required: try f.usd("5"))
        ) {
            try await f.store.payMigrationOrder(migration.id, payerID: nil, option: .balance)
        }
        let other = try await f.service("svc-mail", price: "3", name: "Mail")
        let items = [RenewalItem(serviceID: other.id, periods: 1)]
        await #expect(throws: BillingError.self) {
            try await f.store.renew(
                accountID: f.account.id,
                payerID: nil,
                items: items,
                option: .balance,
                expectedTotal: nil,
                expectedToPay: nil,
                idempotencyKey: nil
            )
        }
        // A second renewal through a payment finds nothing available: it pays all of its total.
        let second = try await f.store.quoteRenewal(accountID: f.account.id, items: items, option: .invoice)
        #expect(second.fromBalance.amountMinorUnits == 0 && second.toPay.amountMinorUnits == 3_00)
        // The invoice cancelled, the 8.00 is available again.
        _ = try await f.store.transition(paymentID: try #require(invoice).id, .cancelled("not paid"))
        let (paid, _) = try await f.store.payMigrationOrder(migration.id, payerID: nil, option: .balance)
        #expect(paid.status == .paid)
        #expect(try await f.balanceMinor() == 3_00)
        #expect(try await f.checkInvariants() == [])
    }

    @Test(arguments: Backend.allCases)
    func expectedAmountsAreInputAndTheBalanceOptionAnswersWithItsOwnRule(_ backend: Backend) async throws {
        let s = try await Self.setUp(.part, .balance, on: backend)
        let f = s.f
        func renew(_ option: PaymentOption, total: Money?, toPay: Money?) async throws {
            _ = try await f.store.renew(
                accountID: f.account.id,
                payerID: f.payer.id,
                items: s.items,
                option: option,
                expectedTotal: total,
                expectedToPay: toPay,
                idempotencyKey: nil
            )
        }
        for (total, toPay) in [
            (nil, Money(minorUnits: -50, .usd)), (Money(minorUnits: 20_00, .eur), nil),
            (nil, Money(minorUnits: 12_00, .eur)),
        ] {
            await #expect(throws: BillingError.self) { try await renew(.invoice, total: total, toPay: toPay) }
            do {
                try await renew(.invoice, total: total, toPay: toPay)
            } catch BillingError.invalidArgument {
            } catch {
                Issue.record("not INVALID_ARGUMENT: \(error)")
            }
        }
        // From the balance, whatever to_pay the quote said: insufficient funds, not "quote again".
        await #expect(throws: BillingError.insufficientFunds(available: try f.usd("8"), required: try f.usd("20"))) {
            try await renew(.balance, total: try f.usd("20"), toPay: try f.usd("12"))
        }
        #expect(try await Self.funds(f).held.amountMinorUnits == 0)
        #expect(try await f.checkInvariants() == [])
    }

    @Test(arguments: Backend.allCases)
    func aMovedBalanceOrARepeatedRequestChangesNothing(_ backend: Backend) async throws {
        let s = try await Self.setUp(.part, .paymentSystem, on: backend)
        let f = s.f
        let quote = try await f.store.quoteRenewal(accountID: f.account.id, items: s.items, option: s.option)
        #expect(quote.toPay.amountMinorUnits == 12_00)
        // The balance grows after the quote: the agreed payment no longer matches.
        try await Self.setBalance(f, 12_00)
        await #expect(throws: BillingError.self) {
            try await f.store.renew(
                accountID: f.account.id,
                payerID: f.payer.id,
                items: s.items,
                option: s.option,
                expectedTotal: quote.total,
                expectedToPay: quote.toPay,
                idempotencyKey: nil
            )
        }
        #expect(try await Self.funds(f).held.amountMinorUnits == 0, "a refusal holds nothing")
        let key = try IdempotencyKey("renew-hold")
        var orders: [String] = []
        for _ in 0..<2 {
            let (order, payment) = try await f.store.renew(
                accountID: f.account.id,
                payerID: f.payer.id,
                items: s.items,
                option: s.option,
                expectedTotal: quote.total,
                expectedToPay: try f.usd("8"),
                idempotencyKey: key
            )
            #expect(payment?.amount.amountMinorUnits == 8_00)
            orders.append(order.id)
        }
        #expect(Set(orders).count == 1, "one order for one key")
        #expect(try await Self.funds(f).held.amountMinorUnits == 12_00, "held once")
        #expect(try await f.checkInvariants() == [])
    }
}
