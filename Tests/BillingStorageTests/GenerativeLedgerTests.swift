import BillingCore
import BillingStorage
import BillingTestSupport
import Testing

/// Seeded random sequences of operations, including concurrent duplicates; after
/// each sequence every invariant holds. A failure names its seed.
@Suite struct GenerativeLedgerTests {
    @Test(arguments: Backend.allCases, 0..<12)
    func invariantsHoldOverRandomOperations(_ backend: Backend, seed: UInt64) async throws {
        let f = try await StoreFixture(backend)
        var random = SplitMix64(seed: seed)
        var open: [Payment] = []
        var expectedBalance: Int64 = 0
        for step in 0..<60 {
            let operation = random.below(6)
            if operation < 2 {
                let cents = Int64(50 + random.below(1_500_000 - 50 + 1))
                let option: PaymentOption =
                    random.below(3) == 0
                    ? .invoice
                    : .paymentSystem(.sandbox, saveMethod: random.below(2) == 0, returnURL: "https://panel.example/p")
                open.append(try await f.topUp(Money(minorUnits: cents, .usd).formatted, option))
            } else if operation < 4 && !open.isEmpty {
                // The same transition from several tasks at once: poller, refresh, webhook.
                let payment = open.remove(at: random.below(open.count))
                let outcome: TransitionOutcome = random.below(3) == 0 ? .cancelled("declined") : .paid
                let applied = try await Self.transitionConcurrently(
                    f.store,
                    payment.id,
                    outcome,
                    copies: 1 + random.below(4)
                )
                #expect(applied == 1, "seed \(seed) step \(step)")
                if outcome.target == .paid { expectedBalance += payment.amount.amountMinorUnits }
            } else if operation == 4 {
                let price = Int64(1 + random.below(100_000))
                if try await Self.payMigrationFromBalance(f, externalID: "m\(step)", priceMinor: price) {
                    expectedBalance -= price
                } else {
                    #expect(expectedBalance < price, "seed \(seed) step \(step)")
                }
            } else {
                try await Self.repeatAFinishedPayment(f)
            }
        }
        #expect(try await f.balanceMinor() == expectedBalance, "seed \(seed)")
        #expect(try await f.checkInvariants() == [], "seed \(seed)")
    }

    static func transitionConcurrently(
        _ store: any SQLStore,
        _ paymentID: String,
        _ outcome: TransitionOutcome,
        copies: Int
    ) async throws -> Int {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<copies {
                group.addTask {
                    let result = try await store.transition(paymentID: paymentID, outcome)
                    if case .applied = result { return 1 }
                    return 0
                }
            }
            return try await group.reduce(0, +)
        }
    }

    /// true when paid, false on insufficient funds.
    static func payMigrationFromBalance(_ f: StoreFixture, externalID: String, priceMinor: Int64) async throws -> Bool {
        let order = try await f.store.createMigrationOrder(
            accountID: f.account.id,
            externalID: externalID,
            description: "",
            serverPrice: Money(minorUnits: priceMinor, .usd)
        )
        do {
            _ = try await f.store.payMigrationOrder(order.id, payerID: nil, option: .balance)
            return true
        } catch BillingError.insufficientFunds {
            return false
        }
    }

    /// A finished payment driven to Paid again: never a second credit.
    static func repeatAFinishedPayment(_ f: StoreFixture) async throws {
        let payments = try await f.store.listPayments(PaymentQuery(accountID: f.account.id)).items
        guard let payment = payments.first(where: { $0.status.isFinal }) else { return }
        var failure: BillingError?
        var outcome: TransitionResult?
        do {
            outcome = try await f.store.transition(paymentID: payment.id, .paid)
        } catch {
            failure = error
        }
        if payment.status == .paid {
            #expect(outcome == .alreadyFinal(payment))
        } else {
            #expect(failure == .invalidTransition(paymentID: payment.id, from: .cancelled, to: .paid))
        }
    }

    @Test(arguments: Backend.allCases)
    func pagingNeitherSkipsNorRepeatsWhilePaymentsArrive(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        var created: [String] = []
        for index in 0..<15 { created.append(try await f.topUp("\(index + 1)").id) }
        var query = PaymentQuery(accountID: f.account.id)
        query.pageSize = 4
        var seen: [String] = []
        while true {
            let page = try await f.store.listPayments(query)
            seen += page.items.map(\.id)
            // New payments arrive between pages; they sort before the cursor.
            _ = try await f.topUp("7")
            guard let next = page.nextPageToken else { break }
            query.pageToken = next
        }
        #expect(seen == created.reversed())
    }

    @Test(arguments: Backend.allCases)
    func filtersNarrowTheHistory(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let paid = try await f.topUp("10")
        _ = try await f.store.transition(paymentID: paid.id, .paid)
        let invoice = try await f.topUp("20", .invoice)
        var query = PaymentQuery(accountID: f.account.id)
        query.statuses = [.new]
        #expect(try await f.store.listPayments(query).items.map(\.id) == [invoice.id])
        query.statuses = [.paid]
        #expect(try await f.store.listPayments(query).items.map(\.id) == [paid.id])
        query.statuses = []
        query.createdFromMs = invoice.createdAtMs
        #expect(try await f.store.listPayments(query).items.map(\.id) == [invoice.id])
        query.pageToken = "garbage"
        await #expect(throws: BillingError.self) { try await f.store.listPayments(query) }
    }
}
