import BillingCore
import BillingStorage
import Testing

/// Bad input gets a clear error and changes nothing.
@Suite struct BadInputTests {
    @Test(arguments: Backend.allCases, ["0", "0.49", "15000.01", "-1"])
    func amountsOutsideTheLimitsAreRefused(_ backend: Backend, amount: String) async throws {
        let f = try await StoreFixture(backend)
        await #expect(throws: BillingError.self) { try await f.topUp(amount) }
        #expect(try await f.store.listPayments(PaymentQuery(accountID: f.account.id)).items.isEmpty)
    }

    @Test(arguments: Backend.allCases)
    func unknownAndForeignPayersAreNotFound(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let other = try await f.store.createAccount(id: "acc_other", displayName: "Other", currency: .usd)
        let foreign = try await f.store.createPayer(accountID: other.id, displayName: "Theirs", email: "")
        await #expect(throws: BillingError.notFound("payer \(foreign.id) not found")) {
            try await f.topUp("10", payer: foreign)
        }
        let ghost = Payer(id: "pyr_nope", accountID: f.account.id, displayName: "", email: "", createdAtMs: 0)
        await #expect(throws: BillingError.notFound("payer pyr_nope not found")) {
            try await f.topUp("10", payer: ghost)
        }
    }

    @Test(arguments: Backend.allCases)
    func anotherPayersMethodIsNotFound(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let second = try await f.store.createPayer(accountID: f.account.id, displayName: "Payer Two", email: "")
        let theirs = try await f.confirmedMethod(payer: second)
        await #expect(throws: BillingError.notFound("payment method \(theirs.id) not found")) {
            try await f.topUp("10", .savedMethod(id: theirs.id))
        }
    }

    @Test(arguments: Backend.allCases)
    func onlyOneDefaultAndOnlyAConfirmedOne(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let first = try await f.confirmedMethod()
        let second = try await f.confirmedMethod()
        #expect(first.isDefault)
        #expect(!second.isDefault)
        _ = try await f.store.setDefaultMethod(second.id)
        let methods = try await f.store.paymentMethods(payerID: f.payer.id, includeRemoved: false)
        #expect(methods.filter(\.isDefault).map(\.id) == [second.id])

        let pending = try await f.topUp(
            "5",
            .paymentSystem(.stripe, saveMethod: true, returnURL: "https://panel.example/p")
        )
        await #expect(throws: BillingError.self) { try await f.store.setDefaultMethod(pending.savedPaymentMethodID!) }
        let removed = try await f.store.removeMethod(second.id)
        #expect(removed.status == .removed)
        #expect(!removed.isDefault)
    }

    @Test(arguments: Backend.allCases)
    func badReturnURLAndBalanceOptionAreRefused(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        await #expect(throws: BillingError.self) {
            try await f.topUp("10", .paymentSystem(.stripe, saveMethod: false, returnURL: "javascript:alert(1)"))
        }
        await #expect(throws: BillingError.self) { try await f.topUp("10", .balance) }
    }

    @Test func idempotencyKeysMustBePrintableASCII() {
        #expect(throws: BillingError.self) { try IdempotencyKey("") }
        #expect(throws: BillingError.self) { try IdempotencyKey("key with space") }
        #expect(throws: BillingError.self) { try IdempotencyKey(String(repeating: "k", count: 129)) }
    }

    @Test(arguments: Backend.allCases)
    func wrongCurrencyIsRefused(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        await #expect(throws: BillingError.self) {
            try await f.store.createTopUp(
                TopUpRequest(
                    accountID: f.account.id,
                    payerID: f.payer.id,
                    amount: Money(minorUnits: 10_00, .eur),
                    option: .invoice
                ),
                idempotencyKey: nil
            )
        }
    }

    @Test(arguments: Backend.allCases)
    func accountsAreOnlyMadeInCurrenciesWithATopUpPolicy(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        // The seed's configuration offers USD only: an EUR account could never be topped up.
        await #expect(throws: BillingError.self) {
            try await f.store.createAccount(id: "acc_eur", displayName: "E", currency: .eur)
        }
    }
}
