import BillingCore
import BillingTestSupport
import Foundation
import GRDB
import Testing

@testable import BillingStorage

@Suite struct SchemaTests {
    @Test(arguments: ["v1", "v2-renewals"])
    func everyEarlierVersionMigratesAtOpen(version: String) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "billing-schema-\(UUID().uuidString)"
        )
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("billing.sqlite")
        try SQLiteStore.createFile(path: file.path, upTo: version)
        let f = try await StoreFixture(reopening: file)
        _ = try await f.service("svc-1", price: "1", periodDays: 1, expiresAtMs: 1_000_000_000_000, name: "VPS")
        #expect(try await f.sqlite.integrityCheck() == "ok")
    }

    @Test func eventsWrittenBeforeAccountSequencesAreNumberedPerAccountAtOpen() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "billing-schema-\(UUID().uuidString)"
        )
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("billing.sqlite")
        try SQLiteStore.createFile(path: file.path, upTo: "v2-renewals")
        // Events as the previous version wrote them: global sequence only, two accounts interleaved.
        let change = String(
            decoding: try JSONEncoder().encode(
                Event.Change.balanceChanged(
                    balance: Money(minorUnits: 0, .usd),
                    delta: Money(minorUnits: 0, .usd),
                    paymentID: nil,
                    reference: "r"
                )
            ),
            as: UTF8.self
        )
        let rows = [(1, "acc_a"), (2, "acc_b"), (3, "acc_a"), (4, "acc_b"), (5, "acc_b"), (6, "acc_a")].map {
            sequence,
            account in
            "(\(sequence), '\(account)', 0, 'balance_changed', '\(change.replacingOccurrences(of: "'", with: "''"))')"
        }
        let script = "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()"
        let insert =
            "INSERT INTO events (sequence, account_id, at_ms, kind, payload) VALUES " + rows.joined(separator: ", ")
        let python = await ChildProcess.run("/usr/bin/python3", ["-c", script, file.path, insert])
        #expect(python.status == 0, "\(python.errorText)")
        let f = try await StoreFixture(reopening: file)
        let a = try await f.store.events(after: 0, accountID: "acc_a", limit: 100)
        #expect(a.map(\.sequence) == [1, 3, 6])
        #expect(a.map(\.accountSequence) == [1, 2, 3])
        let b = try await f.store.events(after: 1, accountID: "acc_b", limit: 100)
        #expect(b.map(\.sequence) == [4, 5])
        #expect(try await f.store.events(after: 0, accountID: nil, limit: 100).map(\.sequence) == [1, 2, 3, 4, 5, 6])
        #expect(try await f.sqlite.integrityCheck() == "ok")
    }

    /// A commit survives power loss: the writer syncs the log at every commit
    /// (GRDB's pool would leave it at NORMAL, which syncs only at checkpoints).
    @Test func theWriterSyncsEveryCommit() async throws {
        let f = try await StoreFixture()
        #expect(try await f.sqlite.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 2)
        #expect(try await f.sqlite.pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") } == "wal")
    }

    @Test func theAuditTrailCommitsWithItsChangeAndIsAppendOnly() async throws {
        let f = try await StoreFixture()
        let payment = try await Audit.$actor.withValue(
            AuditActor(who: "internal/panel", via: "/billing.v1.Balance/CreateTopUp")
        ) {
            try await f.topUp("12.50", .invoice)
        }
        _ = try await Audit.$actor.withValue(
            AuditActor(who: "operator/alice", via: "/billing.v1.Balance/SettleInvoice")
        ) {
            try await f.store.transition(paymentID: payment.id, .paid)
        }
        var trail = try await f.store.auditTrail(AuditQuery(accountID: f.account.id, paymentID: payment.id))
        #expect(trail.map(\.action) == ["payment.created", "invoice.issued", "payment.paid", "ledger.credit"])
        #expect(trail[0].who == "internal/panel" && trail[0].via == "/billing.v1.Balance/CreateTopUp")
        #expect(trail[0].detail.contains("12.50 USD"))
        #expect(trail[1].subject == payment.invoiceNumber && trail[1].who == "internal/panel")
        #expect(trail[2].who == "operator/alice" && trail[3].who == "operator/alice")
        #expect(trail[3].detail.contains("balance 0.00 USD → 12.50 USD"), "\(trail[3].detail)")

        // A repeat changes nothing and records nothing; a refused change writes
        // no audit entry: it is in the same transaction.
        if case .applied = try await f.store.transition(paymentID: payment.id, .paid) {
            Issue.record("a Paid payment was paid again")
        }
        await #expect(throws: BillingError.self) {
            _ = try await f.store.transition(paymentID: payment.id, .cancelled("too late"))
        }
        trail = try await f.store.auditTrail(AuditQuery(accountID: f.account.id, paymentID: payment.id))
        #expect(trail.count == 4)

        for statement in ["UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"] {
            #expect(throws: (any Error).self, "\(statement)") {
                try f.sqlite.pool.writeWithoutTransaction { db in try db.execute(sql: statement) }
            }
        }
        #expect(try await f.store.auditTrail(AuditQuery(accountID: f.account.id)).count >= 3)
        await #expect(throws: BillingError.self) {
            _ = try await f.store.auditTrail(AuditQuery(accountID: f.account.id, limit: 0))
        }
    }

    @Test func idempotencyKeysExpire() async throws {
        let f = try await StoreFixture(idempotencyKeyLifetime: .seconds(60))
        let first = try await f.topUp("10", key: "k")
        f.clock.advance(by: .seconds(30))
        #expect(try await f.topUp("10", key: "k").id == first.id)
        f.clock.advance(by: .seconds(31))
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
            idempotencyKey: try IdempotencyKey("shared")
        )
        #expect(mine.id != theirs.id)
    }
}
