import BillingCore
import BillingStorage
import Testing

@Suite struct MigrationOrderTests {
    @Test(arguments: Backend.allCases)
    func paidFromTheBalanceOnceWithAClearShortfall(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let order = try await f.store.createMigrationOrder(
            accountID: f.account.id,
            externalID: "mig-1",
            description: "VPS 4 GB",
            serverPrice: try f.usd("40")
        )
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

    @Test(arguments: Backend.allCases)
    func paidThroughAPaymentCreditsThenDebitsInOneTransition(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let order = try await f.store.createMigrationOrder(
            accountID: f.account.id,
            externalID: "mig-2",
            description: "",
            serverPrice: try f.usd("75.25")
        )
        let (pending, payment) = try await f.store.payMigrationOrder(
            order.id,
            payerID: f.payer.id,
            option: .paymentSystem(.paypal, saveMethod: false, returnURL: "https://panel.example/p")
        )
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

    @Test(arguments: Backend.allCases)
    func aPaymentForAnOrderTheBalanceOwesAgainstIsCreditedAndTheOrderReleased(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        // 30.00 topped up and spent, then half of it charged back: the account owes 15.00.
        let topUp = try await f.topUp("30")
        _ = try await f.store.transition(paymentID: topUp.id, .paid)
        let spent = try await f.store.createMigrationOrder(
            accountID: f.account.id,
            externalID: "spent",
            description: "",
            serverPrice: try f.usd("30")
        )
        _ = try await f.store.payMigrationOrder(spent.id, payerID: nil, option: .balance)
        #expect(
            try await f.store.recordReversal(
                Reversal(paymentID: topUp.id, kind: .chargeback, amount: try f.usd("15"), reference: "dp_1", reason: "")
            )
        )
        #expect(try await f.balanceMinor() == -15_00)
        let order = try await f.store.createMigrationOrder(
            accountID: f.account.id,
            externalID: "mig-owed",
            description: "",
            serverPrice: try f.usd("20")
        )
        let (_, payment) = try await f.store.payMigrationOrder(
            order.id,
            payerID: f.payer.id,
            option: .paymentSystem(.stripe, saveMethod: false, returnURL: "https://panel.example/p")
        )

        // 20.00 arrives for the 20.00 order: credited, the payment Paid, the order released.
        let paid = try await f.store.transition(paymentID: try #require(payment).id, .paid)
        #expect(paid.payment.status == .paid, "money that arrived is never left uncredited")
        #expect(try await f.balanceMinor() == 5_00)
        let released = try await f.store.migrationOrder(order.id)
        #expect(released.status == .awaitingPayment && released.paymentID == nil)
        let notes = try await f.store.notifications(accountID: f.account.id, pageSize: 5, pageToken: nil).items
        #expect(notes.first?.title == "Order not paid")
        #expect(try await f.checkInvariants() == [])
    }

    @Test(arguments: Backend.allCases)
    func aCancelledPaymentLeavesTheOrderPayable(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let order = try await f.store.createMigrationOrder(
            accountID: f.account.id,
            externalID: "mig-3",
            description: "",
            serverPrice: try f.usd("10")
        )
        let (_, payment) = try await f.store.payMigrationOrder(order.id, payerID: f.payer.id, option: .invoice)
        _ = try await f.store.transition(paymentID: payment!.id, .cancelled("operator cancelled the invoice"))
        #expect(try await f.store.migrationOrder(order.id).status == .awaitingPayment)
    }

    @Test(arguments: Backend.allCases)
    func sameExternalIDReturnsTheOrder(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let first = try await f.store.createMigrationOrder(
            accountID: f.account.id,
            externalID: "mig-4",
            description: "a",
            serverPrice: try f.usd("1")
        )
        let again = try await f.store.createMigrationOrder(
            accountID: f.account.id,
            externalID: "mig-4",
            description: "a",
            serverPrice: try f.usd("1")
        )
        #expect(first == again)
        await #expect(throws: BillingError.self) {
            try await f.store.createMigrationOrder(
                accountID: f.account.id,
                externalID: "mig-4",
                description: "a",
                serverPrice: try f.usd("2")
            )
        }
    }

    @Test(arguments: Backend.allCases)
    func unknownOrdersAreNotFound(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        await #expect(throws: BillingError.notFound("migration order mo_nope not found")) {
            try await f.store.payMigrationOrder("mo_nope", payerID: nil, option: .balance)
        }
        await #expect(throws: BillingError.notFound("renewal order ro_nope not found")) {
            try await f.store.renewalOrder("ro_nope")
        }
        await #expect(throws: BillingError.notFound("payment pay_nope not found")) {
            try await f.store.transition(paymentID: "pay_nope", .paid)
        }
        #expect(try await f.checkInvariants() == [])
    }
}
