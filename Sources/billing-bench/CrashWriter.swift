import BillingCore
import BillingStorage
import Foundation

/// The durability test's child: writes top-ups and their transitions to
/// `path` until it is killed.
enum CrashWriter {
    static func run(path: String) async throws {
        let store = try SQLiteStore(StorageConfiguration(path: path))
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
            let option: PaymentOption = .paymentSystem(
                .sandbox,
                saveMethod: step % 2 == 0,
                returnURL: "https://panel.example/p"
            )
            let payment = try await store.createTopUp(
                TopUpRequest(
                    accountID: account.id,
                    payerID: payer!.id,
                    amount: Money(minorUnits: Int64(50 + step % 1000), .usd),
                    option: option
                ),
                idempotencyKey: nil
            )
            _ = try await store.transition(paymentID: payment.id, step % 5 == 0 ? .cancelled("declined") : .paid)
        }
    }
}
