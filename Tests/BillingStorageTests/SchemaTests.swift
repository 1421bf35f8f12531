@testable import BillingStorage
import BillingCore
import Foundation
import Testing

@Suite struct SchemaTests {
    @Test(arguments: ["v1"])
    func everyEarlierVersionMigratesAtOpen(version: String) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("billing-schema-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("billing.sqlite")
        try SQLiteStore.createFile(path: file.path, upTo: version)
        let f = try await StoreFixture(reopening: file)
        _ = try await f.store.upsertRenewableService(RenewableService(
            id: "svc-1", accountID: f.account.id, displayName: "VPS", pricePerPeriod: try f.usd("1"), periodDays: 1, expiresAtMs: 0, updatedAtMs: 0))
        #expect(try await f.store.integrityCheck() == "ok")
    }

    @Test func idempotencyKeysExpire() async throws {
        let f = try await StoreFixture(idempotencyKeyLifetimeMs: 60_000)
        let first = try await f.topUp("10", key: "k")
        f.clock.advance(byMs: 30_000)
        #expect(try await f.topUp("10", key: "k").id == first.id)
        f.clock.advance(byMs: 31_000)
        let later = try await f.topUp("20", key: "k")
        #expect(later.id != first.id)
    }

    @Test func keysAreScopedToTheAccount() async throws {
        let f = try await StoreFixture()
        let other = try await f.store.createAccount(id: "acc_other", displayName: "Other", currency: .usd)
        let payer = try await f.store.createPayer(accountID: other.id, displayName: "P", email: "")
        let mine = try await f.topUp("10", key: "shared")
        let theirs = try await f.store.createTopUp(
            TopUpRequest(accountID: other.id, payerID: payer.id, amount: try f.usd("10"), option: .invoice),
            policy: .seedDefault, idempotencyKey: try IdempotencyKey("shared"))
        #expect(mine.id != theirs.id)
    }
}
