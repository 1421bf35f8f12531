import BillingCore
import BillingStorage
import Foundation
import GRDB

/// Committed transitions per second on one SQLite file with the durability
/// settings billingd ships (WAL, synchronous=FULL): a payment goes New → Paid
/// with its ledger credit, balance update and events, one transaction each.
enum TransitionBenchmark {
    static func run(count: Int, tasks: Int) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "billing-bench-\(UUID().uuidString)"
        )
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let store = try SQLiteStore(StorageConfiguration(path: directory.appendingPathComponent("bench.sqlite").path))
        let account = try await store.createAccount(id: "acc_bench", displayName: "Bench", currency: .usd)
        let payer = try await store.createPayer(accountID: account.id, displayName: "Bench", email: "")
        let request = TopUpRequest(
            accountID: account.id,
            payerID: payer.id,
            amount: Money(minorUnits: 100_00, .usd),
            option: .paymentSystem(.sandbox, saveMethod: false, returnURL: "https://panel.example/p")
        )

        var payments: [String] = []
        let createStart = ContinuousClock.now
        for _ in 0..<count {
            payments.append(try await store.createTopUp(request, idempotencyKey: nil).id)
        }
        let createElapsed = ContinuousClock.now - createStart

        // The reference, measured in the same run on the same disk: one-row
        // inserts, each its own commit, WAL with synchronous=FULL (one fsync each).
        let referenceBefore = try reference(count: min(count, 2_000), in: directory, name: "before")
        let slice = max(1, (count + tasks - 1) / tasks)
        let transitionStart = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for start in stride(from: 0, to: count, by: slice) {
                let ids = Array(payments[start..<min(start + slice, count)])
                group.addTask {
                    for id in ids { _ = try await store.transition(paymentID: id, .paid) }
                }
            }
            try await group.waitForAll()
        }
        let transitionElapsed = ContinuousClock.now - transitionStart
        let referenceAfter = try reference(count: min(count, 2_000), in: directory, name: "after")

        let balance = try await store.balance(accountID: account.id).funds.balance
        precondition(balance.amountMinorUnits == Int64(count) * 100_00, "balance does not match the transitions")
        print("top-ups created:        \(count) in \(createElapsed), \(perSecond(count, createElapsed))/s (sequential)")
        print(
            "transitions committed:  \(count) in \(transitionElapsed), \(perSecond(count, transitionElapsed))/s (\(tasks) tasks)"
        )
        print("balance check:          \(balance) = \(count) × 100.00 USD")
        let referenceRate = (referenceBefore + referenceAfter) / 2
        let rate = perSecond(count, transitionElapsed)
        print("bare commits (reference): \(referenceBefore)/s before, \(referenceAfter)/s after")
        print(
            "P3 transitions / bare one-commit-per-fsync = \(String(format: "%.2f", Double(rate) / Double(max(1, referenceRate))))"
        )
    }

    /// Commits/s of a bare loop: one-row insert + commit, WAL, synchronous=FULL.
    static func reference(count: Int, in directory: URL, name: String) throws -> Int {
        var configuration = Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        let path = directory.appendingPathComponent("reference-\(name).sqlite").path
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
        }
        let start = ContinuousClock.now
        for value in 0..<count {
            try queue.write { db in try db.execute(sql: "INSERT INTO t (v) VALUES (?)", arguments: [value]) }
        }
        let elapsed = ContinuousClock.now - start
        try queue.close()
        return perSecond(count, elapsed)
    }
}

func perSecond(_ count: Int, _ duration: Duration) -> Int {
    let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    return seconds > 0 ? Int(Double(count) / seconds) : 0
}
