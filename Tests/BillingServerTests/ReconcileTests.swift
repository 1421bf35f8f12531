import BillingAPI
import BillingMessages
import BillingRPC
import BillingTestSupport
import Foundation
import Testing

/// `billing reconcile` against the fake Stripe (and the sandbox), with
/// disagreements planted on purpose: each is reported once, with its
/// payment, and the exit status says whether the books agree.
@Suite(.serialized) struct ReconcileTests {
    /// An hour ago: every payment of a test is in the period.
    let since: String = {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date(timeIntervalSinceNow: -3600))
    }()

    func reconcile(
        _ f: ServerFixture,
        _ extra: [String],
        as role: String = "operator"
    ) async throws -> (
        status: Int32, report: [String: Any]?, stderr: String
    ) {
        let result = try await f.billing(["reconcile", "--since", since, "--json"] + extra, as: role)
        return (result.status, try? json(result.stdout), result.stderr)
    }

    func kinds(_ report: [String: Any]?) -> [String: [String]] {
        var found: [String: [String]] = [:]
        for item in report?["disagreements"] as? [[String: Any]] ?? [] {
            found[item["kind"] as? String ?? "", default: []].append(item["payment_id"] as? String ?? "")
        }
        return found
    }

    @Test func plantedDisagreementsWithStripeAreEachReported() async throws {
        let fake = try await FakeProvider.stripe()
        let secrets = FileManager.default.temporaryDirectory.appendingPathComponent("rec-\(UUID().uuidString)").path
        try "\(FakeProvider.stripeSecretKey)\n".write(toFile: secrets, atomically: true, encoding: .utf8)
        defer {
            fake.stop()
            try? FileManager.default.removeItem(atPath: secrets)
        }
        let f = try await ServerFixture { configuration in
            configuration.stripe.enabled = true
            configuration.stripe.baseURL = fake.baseURL
            configuration.stripe.secretKeyFile = secrets
            configuration.stripe.timeoutSeconds = 5
        }
        let (account, payer) = try await f.account("acc-reconcile")
        let client = try f.clients("internal")
        func paidTopUp(_ minor: Int64, save: Bool = false) async throws -> (id: String, session: String) {
            let created = try await client.balance.createTopUp(
                topUpRequest(account: account.id, payer: payer.id, minor: minor, option: .system(.stripe, save: save))
            )
            let session = String(try #require(created.redirectUrl.split(separator: "/").last))
            let id = try #require(created.payment?.id)
            try await fake.control("sessions/\(session)/pay")
            let paid = try await f.waitForPayment(id, client: client.balance) { $0.status == .paid }
            #expect(paid.status == .paid)
            return (id, session)
        }
        let agreeing = try await paidTopUp(10_00, save: true)
        let unpaidThere = try await paidTopUp(11_00)
        let otherAmount = try await paidTopUp(12_00)
        // Cancelled here (its session expired at Stripe first).
        let cancelled = try await client.balance.createTopUp(
            topUpRequest(account: account.id, payer: payer.id, minor: 13_00, option: .system(.stripe))
        )
        let cancelledSession = String(try #require(cancelled.redirectUrl.split(separator: "/").last))
        var cancel = BillingV1.CancelPaymentRequest()
        cancel.paymentId = try #require(cancelled.payment?.id)
        #expect(try await client.balance.cancelPayment(cancel).status == .cancelled)

        // Before anything is planted, the books agree.
        let clean = try await reconcile(f, ["--system", "stripe"])
        #expect(clean.status == 0, "\(clean.report ?? [:]) \(clean.stderr)")
        #expect(clean.report?["agree"] as? Bool == true)
        #expect(clean.report?["payments_compared"] as? Int == 4)

        // Planted: a paid session Stripe now calls unpaid; a cancelled one it calls paid; an
        // amount that differs; money taken for a payment nobody made; a card saved outside billingd.
        _ = try await fake.control("tamper/sessions/\(unpaidThere.session)?payment_status=unpaid&status=expired")
        _ = try await fake.control("tamper/sessions/\(cancelledSession)?payment_status=paid&status=complete")
        _ = try await fake.control("tamper/sessions/\(otherAmount.session)?amount_total=999")
        _ = try await fake.control("intents/orphan?payment_id=pay_ghost&amount=4200")
        // A second capture for a payment we hold (and credited once).
        _ = try await fake.control("intents/orphan?payment_id=\(agreeing.id)&amount=1000")
        let sessions = try #require(try await fake.control("sessions", method: "GET") as? [[String: Any]])
        let customer = try #require(
            sessions.first { $0["id"] as? String == agreeing.session }?["customer"] as? String
        )
        _ = try await fake.control("methods/attach?customer=\(customer)")

        let found = try await reconcile(f, ["--system", "stripe"])
        #expect(found.status == 1, "disagreements exit 1: \(found.stderr)")
        #expect(found.report?["agree"] as? Bool == false)
        let byKind = kinds(found.report)
        #expect(byKind["paid_here_not_there"] == [unpaidThere.id], "\(byKind)")
        #expect(byKind["paid_there_not_here"] == [cancel.paymentId], "\(byKind)")
        #expect(Set(byKind["amount_differs"] ?? []) == [otherAmount.id, agreeing.id], "\(byKind)")
        #expect(byKind["captured_there_unknown_here"] == ["pay_ghost"], "\(byKind)")
        #expect(byKind["method_saved_there_not_here"] == [""], "\(byKind)")
        #expect(byKind.values.map(\.count).reduce(0, +) == 6, "nothing else: \(byKind)")

        // The text report, for people: the same, as a table.
        let text = try await f.billing(["reconcile", "--since", since, "--system", "stripe"], as: "operator")
        #expect(text.status == 1)
        #expect(text.stdout.contains("6 disagreements"))
        #expect(text.stdout.contains("amount_differs"))

        // A period before the payments: nothing to compare (saved methods are
        // checked for the payers who paid in the period).
        let before = try await f.billing(
            ["reconcile", "--since", "2025-01-01T00:00:00Z", "--until", "2025-02-01T00:00:00Z", "--system", "stripe"],
            as: "operator"
        )
        #expect(before.status == 0, "\(before.stdout)")
        #expect(before.stdout.contains("the books agree: 0 payments compared"))

        // Nothing was changed by reconciling: the books are as they were.
        let balance = try await client.balance.getBalance(
            {
                var request = BillingV1.GetBalanceRequest()
                request.accountId = account.id
                return request
            }()
        )
        #expect(balance.balance?.amountMinorUnits == 33_00)
        #expect(try await fake.problems() == [])
        await f.stop()
    }

    @Test func theSandboxAgreesUntilItsRecordsAreChanged() async throws {
        let f = try await ServerFixture()
        defer { Task { await f.stop() } }
        let (account, payer) = try await f.account("acc-reconcile-sandbox")
        let client = try f.clients("internal")
        let created = try await client.balance.createTopUp(
            topUpRequest(account: account.id, payer: payer.id, minor: 50_00, option: .system(.sandbox, save: true))
        )
        #expect(try await f.press(created.redirectUrl, approve: true).status == 303)
        let id = try #require(created.payment?.id)
        #expect(try await f.waitForPayment(id, client: client.balance) { $0.status == .paid }.status == .paid)

        let clean = try await reconcile(f, [])
        #expect(clean.status == 0, "\(clean.report ?? [:]) \(clean.stderr)")
        #expect(clean.report?["payments_compared"] as? Int == 1)

        // The sandbox's own record says another amount.
        let script = "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()"
        let changed = await Executable.run(
            "/usr/bin/python3",
            ["-c", script, "\(f.directory)/sandbox.sqlite", "UPDATE payments SET amount_minor = 1"]
        )
        #expect(changed.status == 0, "\(changed.stderr)")
        let found = try await reconcile(f, ["--system", "sandbox"])
        #expect(found.status == 1)
        #expect(kinds(found.report)["amount_differs"] == [id])
    }

    @Test func onlyOperatorsAndInternalServicesReconcileAndBadPeriodsAreRefused() async throws {
        let f = try await ServerFixture()
        defer { Task { await f.stop() } }
        _ = try await f.account("acc-reconcile-auth")
        let own = try f.accountCertificate("acc-reconcile-auth")
        var request = BillingV1.ReconcileRequest()
        request.fromUnixMs = Int64(Date().timeIntervalSince1970 * 1000) - 3_600_000
        do {
            _ = try await BillingV1.OperationsClient(transport: try f.transport(own)).reconcile(request)
            Issue.record("an account-scoped client reconciled")
        } catch let error as RPCError {
            #expect(error.code == .permissionDenied, "\(error)")
        }
        let backwards = try await f.billing(
            ["reconcile", "--since", "2026-02-01T00:00:00Z", "--until", "2026-01-01T00:00:00Z"],
            as: "operator"
        )
        #expect(backwards.status == 64 || backwards.status == 65, "\(backwards.stderr)")
        #expect(backwards.stderr.contains("before"))
        let tooLong = try await f.billing(
            ["reconcile", "--since", "2020-01-01T00:00:00Z", "--until", "2022-01-01T00:00:00Z"],
            as: "operator"
        )
        #expect(tooLong.status != 0 && tooLong.stderr.contains("366 days"), "\(tooLong.stderr)")
        let notUsed = try await f.billing(["reconcile", "--since", since, "--system", "stripe"], as: "operator")
        #expect(notUsed.status != 0 && notUsed.stderr.contains("stripe"), "\(notUsed.stderr)")
        let badTime = try await f.billing(["reconcile", "--since", "yesterday"], as: "operator")
        #expect(badTime.status == 64)
        let future = try await f.billing(["reconcile", "--since", "2999-01-01T00:00:00Z"], as: "operator")
        #expect(future.status != 0 && future.stderr.contains("before now"), "\(future.stderr)")
        // Times near Int64's ends are refused, never computed with.
        var extreme = BillingV1.ReconcileRequest()
        extreme.fromUnixMs = Int64.max - 1000
        extreme.toUnixMs = Int64.max
        do {
            _ = try await BillingV1.OperationsClient(transport: try f.transport("operator")).reconcile(extreme)
            Issue.record("a period at the end of time was reconciled")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument, "\(error)")
        }
        var beyond = BillingV1.ReconcileRequest()
        beyond.fromUnixMs = Int64(Date().timeIntervalSince1970 * 1000) - 60_000
        beyond.toUnixMs = Int64.max
        #expect(try await BillingV1.OperationsClient(transport: try f.transport("operator")).reconcile(beyond).agree)
    }
}
