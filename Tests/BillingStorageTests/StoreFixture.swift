import BillingCore
import BillingPostgres
import BillingStorage
import BillingTestSupport
import Foundation
import Synchronization
import Testing

/// The engines every storage test runs on.
enum Backend: String, CaseIterable, Sendable, CustomStringConvertible {
    /// A real SQLite file in a fresh temporary directory.
    case sqlite
    /// A fresh database of a throw-away PostgreSQL server (`PostgresServer`).
    case postgres

    var description: String { rawValue }
}

/// A store on a real database (`Backend`), with a clock that moves 1 ms per
/// reading so every row has a distinct, ordered time.
final class StoreFixture: Sendable {
    let directory: URL
    let store: any SQLStore
    let account: Account
    let payer: Payer
    /// The PostgreSQL database's settings (nil on SQLite).
    let postgres: PostgresConfiguration?
    /// Only a fixture that made its directory removes it.
    private let ownsDirectory: Bool

    /// A new file in a new temporary directory, or (with `reopening`) the
    /// file a test's child process wrote, opened as billingd would at start.
    let clock = ManualClock(tick: .milliseconds(1))

    init(
        _ backend: Backend = .sqlite,
        reopening existing: URL? = nil,
        idempotencyKeyLifetime: Duration = .seconds(24 * 3600),
        invoices: InvoiceTerms = .development
    ) async throws {
        ownsDirectory = existing == nil
        if let existing {
            directory = existing.deletingLastPathComponent()
        } else {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("billing-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }
        let configuration = StorageConfiguration(
            path: (existing ?? directory.appendingPathComponent("billing.sqlite")).path,
            idempotencyKeyLifetime: idempotencyKeyLifetime,
            invoices: invoices
        )
        switch backend {
        case .sqlite:
            store = try SQLiteStore(configuration, clock: clock)
            postgres = nil
        case .postgres:
            let server = try await PostgresServer.shared()
            let database = try await server.createDatabase()
            var postgres = try PostgresConfiguration(url: server.url(database: database))
            postgres.poolSize = 3
            // A connection that stops answering is given up after 15 s.
            postgres.statementTimeout = .seconds(5)
            self.postgres = postgres
            store = try await PostgresStore.open(configuration, postgres: postgres, clock: clock)
        }
        account = try await store.createAccount(id: "acc_test", displayName: "Test", currency: .usd)
        let payers = try await store.payers(accountID: account.id)
        if let first = payers.first {
            payer = first
        } else {
            payer = try await store.createPayer(
                accountID: account.id,
                displayName: "Payer One",
                email: "one@example.com"
            )
        }
    }

    private let siblings = Mutex<[PostgresStore]>([])

    deinit {
        let open = siblings.withLock { $0 } + [store].compactMap { $0 as? PostgresStore }
        if !open.isEmpty { Task { for store in open { await store.close() } } }
        if ownsDirectory { try? FileManager.default.removeItem(at: directory) }
    }

    /// Another instance's store on the same PostgreSQL database, with the
    /// same clock (its connections, writer and listener its own).
    func sibling() async throws -> PostgresStore {
        let store = try await PostgresStore.open(
            self.store.configuration,
            postgres: try #require(postgres, "a PostgreSQL fixture"),
            clock: clock
        )
        siblings.withLock { $0.append(store) }
        return store
    }

    /// The SQLite store, for the tests of SQLite's own file and connections.
    var sqlite: SQLiteStore { store as! SQLiteStore }

    func usd(_ text: String) throws -> Money {
        try Money(parsing: text, .usd)
    }

    func topUp(
        _ amount: String,
        _ option: PaymentOption = .paymentSystem(
            .sandbox,
            saveMethod: false,
            returnURL: "https://panel.example/payments"
        ),
        payer: Payer? = nil,
        key: String? = nil
    ) async throws -> Payment {
        try await store.createTopUp(
            TopUpRequest(accountID: account.id, payerID: (payer ?? self.payer).id, amount: usd(amount), option: option),
            idempotencyKey: try key.map { key throws in try IdempotencyKey(key) }
        )
    }

    /// A Confirmed method, made the only way methods are made: saved with a Paid payment.
    func confirmedMethod(payer: Payer? = nil) async throws -> PaymentMethod {
        let payment = try await topUp(
            "1.00",
            .paymentSystem(.stripe, saveMethod: true, returnURL: "https://panel.example/p"),
            payer: payer
        )
        _ = try await store.transition(
            paymentID: payment.id,
            .paid(savedMethodReference: "pm_123", displayName: "Visa •••• 4242")
        )
        return try await store.paymentMethod(payment.savedPaymentMethodID!)
    }

    /// A service of this account, registered as the provisioning service would.
    func service(
        _ id: String,
        price: String,
        periodDays: Int = 30,
        expiresAtMs: Int64 = 1_900_000_000_000,
        name: String? = nil
    ) async throws -> RenewableService {
        try await store.upsertRenewableService(
            RenewableService(
                id: id,
                accountID: account.id,
                displayName: name ?? id,
                pricePerPeriod: try usd(price),
                periodDays: periodDays,
                expiresAtMs: expiresAtMs,
                updatedAtMs: 0
            ),
            keepingAutoRenewal: false
        )
    }

    func balanceMinor() async throws -> Int64 {
        try await store.balance(accountID: account.id).funds.balance.amountMinorUnits
    }

    /// Every invariant the ledger and event log promise, checked together.
    func checkInvariants() async throws -> [String] {
        var problems: [String] = []
        let cached = try await balanceMinor()
        let sum = try await store.ledgerSum(accountID: account.id)
        if cached != sum { problems.append("cached balance \(cached) != ledger sum \(sum)") }
        // Every event, in pages: a long durability run writes tens of thousands.
        var events: [Event] = []
        while true {
            let page = try await store.events(after: events.last?.sequence ?? 0, accountID: nil, limit: 10_000)
            events += page
            if page.count < 10_000 { break }
        }
        for (index, event) in events.enumerated() where event.sequence != UInt64(index + 1) {
            problems.append("event \(index) has sequence \(event.sequence)")
            break
        }
        var page = PaymentQuery(accountID: account.id)
        page.pageSize = 200
        var payments: [Payment] = []
        while true {
            let result = try await store.listPayments(page)
            payments += result.items
            guard let next = result.nextPageToken else { break }
            page.pageToken = next
        }
        for payment in payments {
            let credits = try await store.ledgerEntryCount(paymentID: payment.id)
            if credits != (payment.status == .paid ? 1 : 0) {
                problems.append("payment \(payment.id) is \(payment.status) with \(credits) credits")
            }
            let leaves = events.filter {
                if case .paymentStatusChanged(let p, .new?) = $0.change { return p.id == payment.id }
                return false
            }
            if leaves.count != (payment.status == .new ? 0 : 1) {
                problems.append("payment \(payment.id) left New \(leaves.count) times")
            }
        }
        let (_, found) = try await store.checkStorage()
        problems += found
        return problems
    }
}
