import BillingCore
import BillingStorage
import Testing

@Suite struct RenewalTests {
    static let day: Int64 = 86_400_000

    func services(_ f: StoreFixture) async throws -> (RenewableService, RenewableService) {
        let vps = try await f.service("svc-vps", price: "10", name: "VPS")
        let domain = try await f.service(
            "svc-domain",
            price: "12.99",
            periodDays: 365,
            expiresAtMs: 1_000_000_000_000,
            name: "example.com"
        )
        return (vps, domain)
    }

    @Test(arguments: Backend.allCases)
    func quoteSumsTheLinesAndChangesNothing(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let (vps, domain) = try await services(f)
        let quote = try await f.store.quoteRenewal(
            accountID: f.account.id,
            items: [
                RenewalItem(serviceID: vps.id, periods: 3), RenewalItem(serviceID: domain.id, periods: 2),
            ],
            option: nil
        )
        let (lines, total) = (quote.lines, quote.total)
        #expect(total.amountMinorUnits == 3 * 10_00 + 2 * 12_99)
        #expect(quote.fromBalance.amountMinorUnits == 0)
        #expect(quote.toPay == total)
        #expect(lines[0].newExpiresAtMs == vps.expiresAtMs + 90 * Self.day)
        // An expired service renews from now, not from its old expiry.
        #expect(lines[1].newExpiresAtMs > 1_800_000_000_000 + 729 * Self.day)
        #expect(
            try await f.store.renewableServices(accountID: f.account.id).map(\.expiresAtMs) == [
                domain.expiresAtMs, vps.expiresAtMs,
            ]
        )
    }

    @Test(arguments: Backend.allCases)
    func renewFromTheBalanceDebitsAndExtendsAtOnce(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let (vps, _) = try await services(f)
        let items = [RenewalItem(serviceID: vps.id, periods: 2)]
        await #expect(throws: BillingError.insufficientFunds(available: try f.usd("0"), required: try f.usd("20"))) {
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
        let topUp = try await f.topUp("25")
        _ = try await f.store.transition(paymentID: topUp.id, .paid)
        await #expect(throws: BillingError.self) {
            try await f.store.renew(
                accountID: f.account.id,
                payerID: nil,
                items: items,
                option: .balance,
                expectedTotal: try f.usd("15"),
                expectedToPay: nil,
                idempotencyKey: nil
            )
        }
        let (order, payment) = try await f.store.renew(
            accountID: f.account.id,
            payerID: nil,
            items: items,
            option: .balance,
            expectedTotal: try f.usd("20"),
            expectedToPay: nil,
            idempotencyKey: nil
        )
        #expect(order.status == .completed)
        #expect(payment == nil)
        #expect(order.lines.first?.newExpiresAtMs == vps.expiresAtMs + 60 * Self.day)
        #expect(try await f.balanceMinor() == 5_00)
        #expect(
            try await f.store.renewableServices(accountID: f.account.id).first { $0.id == vps.id }?.expiresAtMs == vps
                .expiresAtMs + 60 * Self.day
        )
        #expect(try await f.checkInvariants() == [])
    }

    @Test(arguments: Backend.allCases)
    func renewThroughAPaymentCompletesOnPaidOnly(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let (vps, domain) = try await services(f)
        let items = [RenewalItem(serviceID: vps.id, periods: 1), RenewalItem(serviceID: domain.id, periods: 1)]
        let key = try IdempotencyKey("renew-1")
        let (order, payment) = try await f.store.renew(
            accountID: f.account.id,
            payerID: f.payer.id,
            items: items,
            option: .invoice,
            expectedTotal: nil,
            expectedToPay: nil,
            idempotencyKey: key
        )
        let (again, _) = try await f.store.renew(
            accountID: f.account.id,
            payerID: f.payer.id,
            items: items,
            option: .invoice,
            expectedTotal: nil,
            expectedToPay: nil,
            idempotencyKey: key
        )
        #expect(again.id == order.id)
        #expect(order.status == .awaitingPayment)
        let invoice = try #require(payment)
        #expect(invoice.amount.amountMinorUnits == 22_99)
        _ = try await f.store.transition(paymentID: invoice.id, .paid)
        #expect(try await f.store.renewalOrder(order.id).status == .completed)
        #expect(try await f.balanceMinor() == 0)
        #expect(try await f.checkInvariants() == [])

        let (second, secondPayment) = try await f.store.renew(
            accountID: f.account.id,
            payerID: f.payer.id,
            items: items,
            option: .invoice,
            expectedTotal: nil,
            expectedToPay: nil,
            idempotencyKey: nil
        )
        _ = try await f.store.transition(paymentID: secondPayment!.id, .cancelled("not paid"))
        #expect(try await f.store.renewalOrder(second.id).status == .cancelled)
    }

    @Test(arguments: Backend.allCases)
    func badRenewalsAreRefused(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let (vps, _) = try await services(f)
        let other = try await f.store.createAccount(id: "acc_other", displayName: "Other", currency: .usd)
        for items in [
            [], [RenewalItem(serviceID: vps.id, periods: 0)], [RenewalItem(serviceID: vps.id, periods: 121)],
            [RenewalItem(serviceID: vps.id, periods: 1), RenewalItem(serviceID: vps.id, periods: 1)],
            [RenewalItem(serviceID: "svc-nope", periods: 1)],
        ] {
            await #expect(throws: BillingError.self) {
                try await f.store.quoteRenewal(accountID: f.account.id, items: items, option: nil)
            }
        }
        // Another account's service is not found from this one.
        await #expect(throws: BillingError.notFound("service svc-vps not found")) {
            try await f.store.quoteRenewal(
                accountID: other.id,
                items: [RenewalItem(serviceID: vps.id, periods: 1)],
                option: nil
            )
        }
    }
}
