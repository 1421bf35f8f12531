import BillingAPI
import BillingMessages
import BillingServer
import BillingTestSupport
import Foundation
import Testing

/// billingd on PostgreSQL (`storage.postgres`), as an operator runs it:
/// several instances on one database, the move from SQLite with the real
/// billingd executable, and `--check-config`.
@Suite struct PostgresStorageTests {
    static func usingPostgres(_ url: String) -> (inout BillingConfiguration) -> Void {
        { configuration in configuration.storage.postgres.url = url }
    }

    /// Two billingd instances on one database: what one writes, the other
    /// serves, and a watch on one sees the transitions made on the other.
    @Test func twoInstancesServeOneDatabaseAndOneWatchSeesTheOthersTransitions() async throws {
        let server = try await PostgresServer.shared()
        let url = server.url(database: try await server.createDatabase())
        let a = try await ServerFixture(configure: Self.usingPostgres(url))
        let b = try await ServerFixture(configure: Self.usingPostgres(url))
        let (account, payer) = try await a.account("acc-two")
        let onB = try b.clients("internal")
        let invoice = try await onB.balance.createTopUp(
            topUpRequest(account: account.id, payer: payer.id, minor: 12_34, option: .invoice)
        )
        var settle = BillingV1.SettleInvoiceRequest()
        settle.paymentId = invoice.payment!.id
        settle.reference = "bank transfer 7"
        _ = try await a.clients("operator").balance.settleInvoice(settle)
        var balance = BillingV1.GetBalanceRequest()
        balance.accountId = account.id
        let seenByB = try await onB.balance.getBalance(balance)
        #expect(seenByB.balance?.amountMinorUnits == 12_34)
        // A watch on B, while A writes.
        let last = try await a.clients("internal").balance.getBalance(balance).asOfSequence
        var watch = BillingV1.WatchPaymentsRequest()
        watch.accountId = account.id
        let second = try await a.clients("internal").balance.createTopUp(
            topUpRequest(account: account.id, payer: payer.id, minor: 5_00, option: .invoice)
        )
        var cancel = BillingV1.CancelPaymentRequest()
        cancel.paymentId = second.payment!.id
        _ = try await a.clients("internal").balance.cancelPayment(cancel)
        let target = try await a.clients("internal").balance.getBalance(balance).asOfSequence
        #expect(target > last)
        var sequences: [UInt64] = []
        var cancelledSeen = false
        for try await event in try await onB.balance.watchPayments(watch) {
            sequences.append(event.sequence)
            if case .paymentStatusChanged(let change)? = event.event, change.payment?.id == second.payment!.id,
                change.payment?.status == .cancelled
            {
                cancelledSeen = true
            }
            if event.sequence == target { break }
        }
        #expect(sequences == Array(1...target))
        #expect(cancelledSeen)
        await a.stop()
        await b.stop()
    }

    /// A shop's SQLite file moved into PostgreSQL with the real executable:
    /// checked, refused a second time, and served afterwards with the same
    /// books and history.
    @Test func aShopMovesFromSQLiteToPostgreSQL() async throws {
        let billingd = try #require(Executable.path("billingd"), "billingd must be built")
        let old = try await ServerFixture()
        let (account, payer) = try await old.account("acc-move")
        let clients = try old.clients("internal")
        var paymentIDs: [String] = []
        for minor in [10_00, 20_00, 30_00] as [Int64] {
            let created = try await clients.balance.createTopUp(
                topUpRequest(account: account.id, payer: payer.id, minor: minor, option: .invoice)
            )
            paymentIDs.append(created.payment!.id)
        }
        for id in paymentIDs.prefix(2) {
            var settle = BillingV1.SettleInvoiceRequest()
            settle.paymentId = id
            settle.reference = "transfer \(id)"
            _ = try await old.clients("operator").balance.settleInvoice(settle)
        }
        var balance = BillingV1.GetBalanceRequest()
        balance.accountId = account.id
        let before = try await clients.balance.getBalance(balance)
        var list = BillingV1.ListPaymentsRequest()
        list.accountId = account.id
        let historyBefore = try await clients.balance.listPayments(list).payments.map { ($0.id, $0.status) }
        let directory = old.directory
        await old.stop(removeData: false)
        let source = try Data(contentsOf: URL(fileURLWithPath: directory + "/billing.sqlite"))
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let server = try await PostgresServer.shared()
        let url = server.url(database: try await server.createDatabase())
        let config = directory + "/postgres.json"
        try #"{"dataDirectory": "\#(directory)", "storage": {"postgres": {"url": "\#(url)"}}}"#
            .write(toFile: config, atomically: true, encoding: .utf8)
        let check = await Executable.run(billingd, ["--config", config, "--check-config"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("PostgreSQL 15"), "\(check.stdout)")
        #expect(check.stdout.contains("no billingd schema yet"), "\(check.stdout)")

        let move = await Executable.run(
            billingd,
            ["--config", config, "--migrate-storage-from", directory + "/billing.sqlite"]
        )
        #expect(move.status == 0, "\(move.stdout)\(move.stderr)")
        #expect(move.stdout.contains("copied and checked"), "\(move.stdout)")
        // The source is only read: the operator's way back stays as it was.
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory + "/billing.sqlite")) == source)
        // A file that is not a billingd database is refused and left as it was.
        let empty = directory + "/empty.sqlite"
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        let foreign = await Executable.run(billingd, ["--config", config, "--migrate-storage-from", empty])
        #expect(foreign.status == 1)
        #expect(foreign.stderr.contains("not a billingd database"), "\(foreign.stderr)")
        #expect(try FileManager.default.attributesOfItem(atPath: empty)[.size] as? Int == 0)
        #expect(!FileManager.default.fileExists(atPath: empty + "-wal"))
        let again = await Executable.run(
            billingd,
            ["--config", config, "--migrate-storage-from", directory + "/billing.sqlite"]
        )
        #expect(again.status == 1)
        #expect(again.stderr.contains("not empty"), "\(again.stderr)")
        let checked = await Executable.run(billingd, ["--config", config, "--check-config"])
        #expect(checked.stdout.contains("schema v1, 1 accounts"), "\(checked.stdout)")

        let moved = try await ServerFixture(directory: directory, configure: Self.usingPostgres(url))
        let movedClients = try moved.clients("internal")
        let after = try await movedClients.balance.getBalance(balance)
        #expect(after.balance == before.balance)
        #expect(after.asOfSequence == before.asOfSequence)
        let historyAfter = try await movedClients.balance.listPayments(list).payments.map { ($0.id, $0.status) }
        #expect(historyAfter.map(\.0) == historyBefore.map(\.0))
        #expect(historyAfter.map(\.1) == historyBefore.map(\.1))
        // The open invoice is settled on PostgreSQL, and its events follow the copied ones.
        var settle = BillingV1.SettleInvoiceRequest()
        settle.paymentId = paymentIDs[2]
        settle.reference = "transfer after the move"
        _ = try await moved.clients("operator").balance.settleInvoice(settle)
        let final = try await movedClients.balance.getBalance(balance)
        #expect(final.balance?.amountMinorUnits == 60_00)
        #expect(final.asOfSequence > before.asOfSequence)
        await moved.stop(removeData: false)
    }

    /// A database that cannot be reached, or a password in the URL, is a
    /// configuration problem (exit 78) that says what is wrong.
    @Test func aBadStorageSettingIsAConfigurationProblem() async throws {
        let billingd = try #require(Executable.path("billingd"), "billingd must be built")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pgconf-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cases: [(url: String, says: String)] = [
            ("postgres://billing@/nowhere?host=\(directory)/no-socket", "storage.postgres"),
            ("postgres://billing:secret@localhost/billing", "carries a password"),
            ("mysql://billing@localhost/billing", "must start with postgres://"),
        ]
        for (url, says) in cases {
            let config = directory + "/bad.json"
            try #"{"dataDirectory": "\#(directory)", "storage": {"postgres": {"url": "\#(url)"}}}"#
                .write(toFile: config, atomically: true, encoding: .utf8)
            let result = await Executable.run(billingd, ["--config", config, "--check-config"])
            #expect(result.status == 78, "\(url): \(result.stdout)\(result.stderr)")
            #expect(result.stderr.contains(says), "\(url): \(result.stderr)")
            #expect(!result.stderr.contains("secret"), "the password is never printed")
        }
    }
}
