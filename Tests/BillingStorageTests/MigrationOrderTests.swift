import BillingCore
import BillingStorage
import Testing

@Suite struct MigrationOrderTests {
    @Test func paidFromTheBalanceOnceWithAClearShortfall() async throws {
        let f = try await StoreFixture()
        let order = try await f.store.createMigrationOrder(accountID: f.account.id, externalID: "mig-1", description: "VPS 4 GB",
                                                           serverPrice: try f.usd("40"))
        do {
            _ = try await f.store.payMigrationOrder(order.id, payerID: nil, option: .balance)
            Issue.record("paid with an empty balance")
        } catch BillingError.insufficientFunds(let balance, let required) {
            #expect(balance.amountMinorUnits == 0)
            #expect(required.amountMinorUnits == 40_00)
        }
        let topUp = try await f.topUp("50")
        _ = try await f.store.transition(paymentID: topUp.id, .paid)
        let (paid, payment) = try await f.store.payMigrationOrder(order.id, payerID: nil, option: .balance)
        #expect(paid.status == .paid)
        #expect(payment == nil)
        #expect(try await f.balanceMinor() == 10_00)
        await #expect(throws: BillingError.self) {
            try await f.store.payMigrationOrder(order.id, payerID: nil, option: .balance)
        }
        #expect(try await f.balanceMinor() == 10_00)
        #expect(try await f.checkInvariants() == [])
    }

    @Test func paidThroughAPaymentCreditsThenDebitsInOneTransition() async throws {
        let f = try await StoreFixture()
        let order = try await f.store.createMigrationOrder(accountID: f.account.id, externalID: "mig-2", description: "",
                                                           serverPrice: try f.usd("75.25"))
        let (pending, payment) = try await f.store.payMigrationOrder(
            order.id, payerID: f.payer.id, option: .paymentSystem(.paypal, saveMethod: false, returnURL: "https://panel.example/p"))
        #expect(pending.status == .paymentPending)
        let newPayment = try #require(payment)
        await #expect(throws: BillingError.self) {
            try await f.store.payMigrationOrder(order.id, payerID: f.payer.id, option: .invoice)
        }
        _ = try await f.store.transition(paymentID: newPayment.id, .paid)
        #expect(try await f.store.migrationOrder(order.id).status == .paid)
        #expect(try await f.balanceMinor() == 0)
        #expect(try await f.store.ledgerSum(accountID: f.account.id) == 0)
        #expect(try await f.checkInvariants() == [])
    }

    @Test func aCancelledPaymentLeavesTheOrderPayable() async throws {
        let f = try await StoreFixture()
        let order = try await f.store.createMigrationOrder(accountID: f.account.id, externalID: "mig-3", description: "",
                                                           serverPrice: try f.usd("10"))
        let (_, payment) = try await f.store.payMigrationOrder(order.id, payerID: f.payer.id, option: .invoice)
        _ = try await f.store.transition(paymentID: payment!.id, .cancelled("operator cancelled the invoice"))
        #expect(try await f.store.migrationOrder(order.id).status == .awaitingPayment)
    }

    @Test func sameExternalIDReturnsTheOrder() async throws {
        let f = try await StoreFixture()
        let first = try await f.store.createMigrationOrder(accountID: f.account.id, externalID: "mig-4", description: "a", serverPrice: try f.usd("1"))
        let again = try await f.store.createMigrationOrder(accountID: f.account.id, externalID: "mig-4", description: "a", serverPrice: try f.usd("1"))
        #expect(first == again)
        await #expect(throws: BillingError.self) {
            try await f.store.createMigrationOrder(accountID: f.account.id, externalID: "mig-4", description: "a", serverPrice: try f.usd("2"))
        }
    }

    @Test func unknownOrdersAreNotFound() async throws {
        let f = try await StoreFixture()
        await #expect(throws: BillingError.notFound("migration order mo_nope not found")) {
            try await f.store.payMigrationOrder("mo_nope", payerID: nil, option: .balance)
        }
        await #expect(throws: BillingError.notFound("renewal order ro_nope not found")) { try await f.store.renewalOrder("ro_nope") }
        await #expect(throws: BillingError.notFound("payment pay_nope not found")) { try await f.store.transition(paymentID: "pay_nope", .paid) }
        #expect(try await f.checkInvariants() == [])
    }
}
