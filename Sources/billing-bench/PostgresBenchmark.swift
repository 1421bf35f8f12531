import BillingCore
import BillingPostgres
import BillingStorage
import BillingTestSupport
import Foundation

/// Committed transitions per second on PostgreSQL beside SQLite, measured
/// in one run, interleaved (SQLite, PostgreSQL with one instance, with three
/// instances, and again), so that the machine's drift touches all alike.
///
/// PostgreSQL is a throw-away server of this run with its durable defaults
/// (fsync on, `synchronous_commit = on`: a commit waits for its WAL flush),
/// on a Unix socket. "Three instances" are three `PostgresStore`s in this
/// process, each with its own connections and writer, as three billingd
/// processes would have; the payments are shared out among them.
enum PostgresBenchmark {
    static func run(count: Int, tasks: Int, rounds: Int) async throws {
        let server = try await PostgresServer.start(settings: ["max_connections": "200"])
        defer { Task { await server.stop() } }
        let synchronous = try await server.sql("SHOW synchronous_commit", database: "postgres")
        let fsync = try await server.sql("SHOW fsync", database: "postgres")
        print(
            "PostgreSQL 15 on a Unix socket, synchronous_commit=\(synchronous.trimmingCharacters(in: .whitespacesAndNewlines)), fsync=\(fsync.trimmingCharacters(in: .whitespacesAndNewlines)); \(count) transitions per measure, \(tasks) tasks"
        )
        var results: [String: [Int]] = [:]
        for round in 1...rounds {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "billing-bench-\(UUID().uuidString)"
            )
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let sqlite = try SQLiteStore(StorageConfiguration(path: directory.appendingPathComponent("b.sqlite").path))
            results["sqlite", default: []].append(try await measure([sqlite], count: count, tasks: tasks))
            for instances in [1, 3] {
                let url = server.url(database: try await server.createDatabase())
                var stores: [PostgresStore] = []
                for _ in 0..<instances {
                    var postgres = try PostgresConfiguration(url: url)
                    postgres.poolSize = 4
                    stores.append(try await PostgresStore.open(StorageConfiguration(path: ""), postgres: postgres))
                }
                results["postgres-\(instances)", default: []].append(
                    try await measure(stores, count: count, tasks: tasks)
                )
                for store in stores { await store.close() }
            }
            print(
                "round \(round): SQLite \(results["sqlite"]!.last!)/s, PostgreSQL 1 instance \(results["postgres-1"]!.last!)/s, 3 instances \(results["postgres-3"]!.last!)/s"
            )
        }
        func median(_ values: [Int]) -> Int { values.sorted()[values.count / 2] }
        let sqlite = median(results["sqlite"]!)
        let one = median(results["postgres-1"]!)
        let three = median(results["postgres-3"]!)
        print("median transitions/s: SQLite \(sqlite), PostgreSQL 1 instance \(one), 3 instances \(three)")
        print(
            "PostgreSQL / SQLite = \(String(format: "%.2f", Double(one) / Double(max(1, sqlite)))) (1 instance), \(String(format: "%.2f", Double(three) / Double(max(1, sqlite)))) (3 instances)"
        )
    }

    /// Top-ups made first (not timed), then each paid by `tasks` tasks
    /// shared out among the stores; transitions per second.
    static func measure(_ stores: [any SQLStore], count: Int, tasks: Int) async throws -> Int {
        let first = stores[0]
        let account = try await first.createAccount(id: "acc_bench", displayName: "Bench", currency: .usd)
        let payer = try await first.createPayer(accountID: account.id, displayName: "Bench", email: "b@example.com")
        let request = TopUpRequest(
            accountID: account.id,
            payerID: payer.id,
            amount: Money(minorUnits: 100_00, .usd),
            option: .invoice
        )
        var payments: [String] = []
        for _ in 0..<count { payments.append(try await first.createTopUp(request, idempotencyKey: nil).id) }
        let slice = max(1, (count + tasks - 1) / tasks)
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, from) in stride(from: 0, to: count, by: slice).enumerated() {
                let ids = Array(payments[from..<min(from + slice, count)])
                let store = stores[index % stores.count]
                group.addTask {
                    for id in ids { _ = try await store.transition(paymentID: id, .paid) }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - start
        let balance = try await first.balance(accountID: account.id).funds.balance
        precondition(balance.amountMinorUnits == Int64(count) * 100_00, "balance does not match the transitions")
        let (_, problems) = try await first.checkStorage()
        precondition(problems.isEmpty, "the books do not check out: \(problems)")
        return perSecond(count, elapsed)
    }
}
