import BillingCore
import BillingStorage
import Foundation

// Measures committed transitions per second on one SQLite file with the
// durability settings billingd ships (WAL, synchronous=FULL): a payment goes
// New → Paid with its ledger credit, balance update and events, one
// transaction each. Usage: billing-bench [transitions] [concurrency]

// `billing-bench crash-writer PATH`: the durability test's child. Writes
// top-ups and their transitions to PATH until it is killed.
if CommandLine.arguments.count == 3, CommandLine.arguments[1] == "crash-writer" {
    let store = try SQLiteStore(StorageConfiguration(path: CommandLine.arguments[2]))
    let account = try await store.createAccount(id: "acc_test", displayName: "Test", currency: .usd)
    var payer = try await store.payers(accountID: account.id).first
    if payer == nil {
        payer = try await store.createPayer(accountID: account.id, displayName: "Payer One", email: "")
    }
    // The parent waits for this line before it starts the clock to the kill.
    FileHandle.standardOutput.write(Data("ready\n".utf8))
    var step = 0
    while true {
        step += 1
        let option: PaymentOption = .paymentSystem(.sandbox, saveMethod: step % 2 == 0, returnURL: "https://panel.example/p")
        let payment = try await store.createTopUp(
            TopUpRequest(accountID: account.id, payerID: payer!.id, amount: Money(minorUnits: Int64(50 + step % 1000), .usd), option: option),
            policy: .seedDefault, idempotencyKey: nil)
        _ = try await store.transition(paymentID: payment.id, step % 5 == 0 ? .cancelled("declined") : .paid)
    }
}

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let count = arguments.first ?? 2_000
let concurrency = arguments.dropFirst().first ?? 8

let directory = FileManager.default.temporaryDirectory.appendingPathComponent("billing-bench-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: directory) }

let store = try SQLiteStore(StorageConfiguration(path: directory.appendingPathComponent("bench.sqlite").path))
let account = try await store.createAccount(id: "acc_bench", displayName: "Bench", currency: .usd)
let payer = try await store.createPayer(accountID: account.id, displayName: "Bench", email: "")
let request = TopUpRequest(accountID: account.id, payerID: payer.id, amount: Money(minorUnits: 100_00, .usd),
                           option: .paymentSystem(.sandbox, saveMethod: false, returnURL: "https://panel.example/p"))

var payments: [String] = []
let createStart = ContinuousClock.now
for _ in 0..<count {
    payments.append(try await store.createTopUp(request, policy: .seedDefault, idempotencyKey: nil).id)
}
let createElapsed = ContinuousClock.now - createStart

let transitionStart = ContinuousClock.now
try await withThrowingTaskGroup(of: Void.self) { group in
    let slices = stride(from: 0, to: count, by: max(1, count / concurrency)).map { Array(payments[$0..<min($0 + max(1, count / concurrency), count)]) }
    for slice in slices {
        group.addTask {
            for id in slice { _ = try await store.transition(paymentID: id, .paid) }
        }
    }
    try await group.waitForAll()
}
let transitionElapsed = ContinuousClock.now - transitionStart

func perSecond(_ n: Int, _ d: Duration) -> Int {
    let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    return Int(Double(n) / seconds)
}

let balance = try await store.balance(accountID: account.id).balance
precondition(balance.amountMinorUnits == Int64(count) * 100_00, "balance does not match the transitions")
print("top-ups created:        \(count) in \(createElapsed), \(perSecond(count, createElapsed))/s (sequential)")
print("transitions committed:  \(count) in \(transitionElapsed), \(perSecond(count, transitionElapsed))/s (\(concurrency) tasks)")
print("balance check:          \(balance) = \(count) × 100.00 USD")
