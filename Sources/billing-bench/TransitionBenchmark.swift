import BillingCore
import BillingStorage
import Foundation

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

        let slice = max(1, count / tasks)
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

        let balance = try await store.balance(accountID: account.id).balance
        precondition(balance.amountMinorUnits == Int64(count) * 100_00, "balance does not match the transitions")
        print("top-ups created:        \(count) in \(createElapsed), \(perSecond(count, createElapsed))/s (sequential)")
        print(
            "transitions committed:  \(count) in \(transitionElapsed), \(perSecond(count, transitionElapsed))/s (\(tasks) tasks)"
        )
        print("balance check:          \(balance) = \(count) × 100.00 USD")
    }
}

func perSecond(_ count: Int, _ duration: Duration) -> Int {
    let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    return seconds > 0 ? Int(Double(count) / seconds) : 0
}
