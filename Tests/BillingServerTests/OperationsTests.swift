import BillingAPI
import BillingMessages
import BillingRPC
import BillingServer
import BillingStorage
import Foundation
import Testing

/// The operators' side: metrics scraped after a known sequence of calls, and
/// the audit trail of who changed what.
@Suite struct OperationsTests {
    // MARK: Metrics

    /// One scrape of `GET /metrics`: the status line, the headers and the body.
    func scrape(
        _ f: ServerFixture,
        method: String = "GET",
        path: String = "/metrics"
    ) async throws -> (
        status: Int, head: String, body: String
    ) {
        let port = try #require(f.application.metricsPort)
        let response = try await RawHTTP.exchange(
            host: "127.0.0.1",
            port: port,
            request: "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            group: f.clientGroup
        )
        let parts = response.components(separatedBy: "\r\n\r\n")
        let head = parts.first ?? ""
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, head, parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    /// The value of the sample `name` whose labels include `labels`, summed
    /// over the other labels; nil when there is none.
    func sample(_ body: String, _ name: String, _ labels: [String: String] = [:]) -> Double? {
        var total: Double?
        for line in body.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            let series = line[..<space]
            let metric = series.prefix { $0 != "{" }
            guard metric == name, let value = Double(line[line.index(after: space)...]) else { continue }
            let wanted = labels.allSatisfy { key, value in series.contains("\(key)=\"\(value)\"") }
            if wanted { total = (total ?? 0) + value }
        }
        return total
    }

    @Test func metricsCountAKnownSequenceOfCalls() async throws {
        let f = try await ServerFixture {
            $0.metrics.enabled = true
            $0.metrics.port = 0
        }
        defer { Task { await f.stop() } }
        let (_, payer) = try await f.account("acc-metrics")
        let internalClients = try f.clients("internal")

        // A sandbox top-up paid on the page, and an invoice settled by an operator.
        let hosted = try await internalClients.balance.createTopUp(
            topUpRequest(account: "acc-metrics", payer: payer.id, minor: 10_000, option: .system(.sandbox))
        )
        #expect(try await f.press(hosted.redirectUrl, approve: true).status == 303)
        let paid = try await f.waitForPayment(hosted.payment!.id, client: internalClients.balance) {
            $0.status == .paid
        }
        #expect(paid.status == .paid)
        let invoice = try await internalClients.balance.createTopUp(
            topUpRequest(account: "acc-metrics", payer: payer.id, minor: 20_000, option: .invoice)
        )
        var settle = BillingV1.SettleInvoiceRequest()
        settle.paymentId = invoice.payment!.id
        settle.reference = "bank transfer 1"
        _ = try await f.clients("operator").balance.settleInvoice(settle)
        // Refused calls: a bad amount, and another account's balance.
        await #expect(throws: RPCError.self) {
            _ = try await internalClients.balance.createTopUp(
                topUpRequest(account: "acc-metrics", payer: payer.id, minor: -1, option: .invoice)
            )
        }
        let stranger = try f.clients(try f.accountCertificate("acc-stranger"))
        var balance = BillingV1.GetBalanceRequest()
        balance.accountId = "acc-metrics"
        await #expect(throws: RPCError.self) { _ = try await stranger.balance.getBalance(balance) }

        let scraped = try await scrape(f)
        #expect(scraped.status == 200)
        #expect(scraped.head.lowercased().contains("content-type: text/plain; version=0.0.4"))
        let body = scraped.body
        let accounts = ["service": "billing.v1.Accounts", "code": "OK"]
        #expect(sample(body, "billingd_rpc_calls_total", accounts.merging(["method": "CreateAccount"]) { $1 }) == 1)
        #expect(sample(body, "billingd_rpc_calls_total", accounts.merging(["method": "CreatePayer"]) { $1 }) == 1)
        let topUps = ["service": "billing.v1.Balance", "method": "CreateTopUp"]
        #expect(sample(body, "billingd_rpc_calls_total", topUps.merging(["code": "OK"]) { $1 }) == 2)
        #expect(sample(body, "billingd_rpc_calls_total", topUps.merging(["code": "INVALID_ARGUMENT"]) { $1 }) == 1)
        #expect(
            sample(body, "billingd_rpc_calls_total", ["method": "GetBalance", "code": "PERMISSION_DENIED"]) == 1
        )
        #expect(
            sample(body, "billingd_rpc_call_duration_seconds_count", topUps.merging(["code": "OK"]) { $1 }) == 2
        )
        #expect(
            sample(
                body,
                "billingd_payments_created_total",
                ["purpose": "top_up", "option": "payment_system", "system": "sandbox"]
            ) == 1
        )
        #expect(sample(body, "billingd_payments_created_total", ["option": "invoice", "system": "none"]) == 1)
        #expect(
            sample(body, "billingd_payment_transitions_total", ["system": "sandbox", "outcome": "paid"]) == 1
        )
        #expect(sample(body, "billingd_payment_transitions_total", ["option": "invoice", "outcome": "paid"]) == 1)
        #expect(sample(body, "billingd_ledger_entries_total", ["kind": "credit"]) == 2)
        // The poller may start a payment CreateTopUp is starting (one idempotency key): at least once.
        #expect(
            (sample(
                body,
                "billingd_payment_system_calls_total",
                ["system": "sandbox", "operation": "create_payment", "result": "ok"]
            ) ?? 0) >= 1
        )
        #expect((sample(body, "billingd_payment_system_call_duration_seconds_count", ["system": "sandbox"]) ?? 0) >= 2)
        #expect((sample(body, "billingd_rpc_connections", ["role": "privileged"]) ?? 0) >= 1)
        #expect(sample(body, "billingd_rpc_connections", ["role": "unauthenticated"]) != nil)
        #expect(sample(body, "billingd_stream_subscribers") == 0)
        #expect(sample(body, "billingd_poller_due_payments") != nil)
        #expect(sample(body, "billingd_poller_oldest_due_lag_seconds") != nil)
        #expect(
            (sample(body, "billingd_storage_transaction_duration_seconds_count", ["kind": "write", "result": "ok"]) ?? 0)
                >= 5
        )
        #expect((sample(body, "billingd_events_appended_total") ?? 0) >= 4)
        // Bounded labels only: no account, payer or payment id is a label value.
        for id in ["acc-metrics", "acc-stranger", payer.id, hosted.payment!.id, invoice.payment!.id] {
            #expect(!body.contains(id), "\(id) appears in the metrics")
        }
        // Names follow the conventions: counters end in _total, histograms are in seconds.
        for line in body.split(separator: "\n") where line.hasPrefix("# TYPE") {
            let words = line.split(separator: " ")
            if words.last == "counter" { #expect(words[2].hasSuffix("_total"), "\(line)") }
            if words.last == "histogram" { #expect(words[2].hasSuffix("_seconds"), "\(line)") }
        }

        // Only GET /metrics is served.
        #expect(try await scrape(f, method: "POST").status == 405)
        #expect(try await scrape(f, method: "HEAD").status == 405)
        #expect(try await scrape(f, path: "/").status == 404)
        #expect(try await scrape(f, path: "/metrics/../../etc/passwd").status == 404)
    }

    @Test func metricsAreOffUnlessConfiguredAndOnlyOnLoopback() async throws {
        let f = try await ServerFixture()
        #expect(f.application.metricsPort == nil)
        await f.stop()
        for host in ["0.0.0.0", "10.0.0.1", "127.0.0.1.example.com", "127.evil", "::", "example.com"] {
            var configuration = BillingConfiguration()
            configuration.metrics.enabled = true
            configuration.metrics.host = host
            #expect(
                configuration.validate().contains { $0.contains("metrics.host") },
                "\(host) is not a loopback address"
            )
        }
        var good = BillingConfiguration()
        good.metrics.enabled = true
        for host in ["127.0.0.1", "127.0.0.2", "::1", "localhost"] {
            good.metrics.host = host
            #expect(!good.validate().contains { $0.contains("metrics.host") }, "\(host)")
        }
        good.metrics.port = 70_000
        #expect(good.validate().contains { $0.contains("metrics.port") })
    }

    // MARK: Reload and restore

    /// A TLS reload changes what new connections get; a connection already
    /// open keeps its session and goes on serving calls.
    @Test func aConnectionOpenAcrossATLSReloadGoesOn() async throws {
        let f = try await ServerFixture()
        defer { Task { await f.stop() } }
        _ = try await f.account("acc-reload")
        var request = BillingV1.GetBalanceRequest()
        request.accountId = "acc-reload"
        let open = try f.clients("internal")
        _ = try await open.balance.getBalance(request)
        // Rotate the whole development set: a new CA, new certificates.
        let oldCA = try String(contentsOfFile: "\(f.tls)/ca.pem", encoding: .utf8)
        let keep = FileManager.default.temporaryDirectory.appendingPathComponent("keep-\(UUID().uuidString)").path
        try FileManager.default.moveItem(atPath: f.tls, toPath: keep)
        defer { try? FileManager.default.removeItem(atPath: keep) }
        #expect(await f.application.reload())
        #expect(try String(contentsOfFile: "\(f.tls)/ca.pem", encoding: .utf8) != oldCA)
        // The connection opened before the reload keeps serving, call after call.
        for _ in 0..<3 { _ = try await open.balance.getBalance(request) }
        // A new connection with the new set is served too.
        _ = try await f.clients("internal").balance.getBalance(request)
    }

    /// Restored from a backup taken while billingd serves, the log ends where
    /// the copy did, and a watcher resumes from that sequence with the next event.
    @Test func streamsResumeFromTheRestoredSequence() async throws {
        let f = try await ServerFixture()
        let (_, payer) = try await f.account("acc-restore")
        let client = try f.clients("internal")
        for minor in [1_00, 2_00, 3_00] as [Int64] {
            _ = try await client.balance.createTopUp(
                topUpRequest(account: "acc-restore", payer: payer.id, minor: minor, option: .invoice)
            )
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("restored-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let copy = try await (try #require(f.application.store as? SQLiteStore)).backup(to: folder + "/billing.sqlite")
        #expect(copy.latestSequence > 0)
        // Written after the copy: not in the restored books.
        _ = try await client.balance.createTopUp(
            topUpRequest(account: "acc-restore", payer: payer.id, minor: 9_00, option: .invoice)
        )
        await f.stop()

        let restored = try await ServerFixture(directory: folder)
        defer { Task { await restored.stop() } }
        let again = try restored.clients("internal")
        let created = try await again.balance.createTopUp(
            topUpRequest(account: "acc-restore", payer: payer.id, minor: 4_00, option: .invoice)
        )
        var watch = BillingV1.WatchAllPaymentsRequest()
        watch.afterSequence = copy.latestSequence
        var first: BillingV1.PaymentEvent?
        for try await event in try await again.balance.watchAllPayments(watch) {
            first = event
            break
        }
        let event = try #require(first)
        #expect(event.sequence == copy.latestSequence + 1, "the log goes on from the copy's last sequence")
        guard case .paymentStatusChanged(let changed)? = event.event else {
            Issue.record("the first event after the copy is not the new payment: \(event)")
            return
        }
        #expect(changed.payment?.id == created.payment?.id)
    }

    // MARK: Audit trail

    func audit(
        _ client: BillingV1.OperationsClient,
        account: String,
        payment: String = "",
        pageSize: UInt32 = 0,
        token: String = ""
    ) async throws -> BillingV1.ListAuditResponse {
        var request = BillingV1.ListAuditRequest()
        request.accountId = account
        request.paymentId = payment
        var page = BillingV1.PageRequest()
        page.pageSize = pageSize
        page.pageToken = token
        request.page = page
        return try await client.listAudit(request)
    }

    @Test func theAuditTrailSaysWhoChangedWhatAndThroughWhat() async throws {
        let f = try await ServerFixture()
        defer { Task { await f.stop() } }
        let (_, payer) = try await f.account("acc-audit")
        let own = try f.accountCertificate("acc-audit")
        let ownClients = try f.clients(own)
        let operations = { (name: String) in BillingV1.OperationsClient(transport: try f.transport(name)) }

        // The account's own client tops up through the sandbox; the person pays; the poller sees it.
        let hosted = try await ownClients.balance.createTopUp(
            topUpRequest(account: "acc-audit", payer: payer.id, minor: 5_000, option: .system(.sandbox, save: true))
        )
        #expect(try await f.press(hosted.redirectUrl, approve: true).status == 303)
        let hostedID = try #require(hosted.payment?.id)
        let paid = try await f.waitForPayment(hostedID, client: ownClients.balance) { $0.status == .paid }
        #expect(paid.status == .paid)
        // An invoice, settled by an operator.
        let invoice = try await ownClients.balance.createTopUp(
            topUpRequest(account: "acc-audit", payer: payer.id, minor: 7_000, option: .invoice)
        )
        let invoiceID = try #require(invoice.payment?.id)
        var settle = BillingV1.SettleInvoiceRequest()
        settle.paymentId = invoiceID
        _ = try await f.clients("operator").balance.settleInvoice(settle)

        let trail = try await audit(try operations(own), account: "acc-audit", pageSize: 200).entries
        func find(_ action: String, _ subject: String? = nil) -> BillingV1.AuditEntry? {
            trail.first { $0.action == action && (subject == nil || $0.subject == subject) }
        }
        let created = try #require(find("account.created", "acc-audit"))
        #expect(created.actor == "internal/dev")
        #expect(created.via == "/billing.v1.Accounts/CreateAccount")
        #expect(find("payer.created", payer.id)?.via == "/billing.v1.Accounts/CreatePayer")
        let topUp = try #require(find("payment.created", hostedID))
        #expect(topUp.actor == "account/acc-audit")
        #expect(topUp.via == "/billing.v1.Balance/CreateTopUp")
        #expect(topUp.detail.contains("50.00 USD"), "\(topUp.detail)")
        // CreateTopUp starts it, or the poller when it got there first (one idempotency key).
        #expect(["account/acc-audit", "poller"].contains(find("payment.started", hostedID)?.actor ?? ""))
        #expect(find("method.added")?.paymentId == hostedID)
        let hostedPaid = try #require(find("payment.paid", hostedID))
        // The poller or a refresh saw the payment; waitForPayment only reads.
        #expect(hostedPaid.actor == "poller" && hostedPaid.via == "poll", "\(hostedPaid)")
        #expect(trail.contains { $0.action == "ledger.credit" && $0.paymentId == hostedID && $0.actor == "poller" })
        let settled = try #require(find("payment.paid", invoiceID))
        #expect(settled.actor == "operator", "an account's own client sees that support acted, not who")
        #expect(settled.via == "/billing.v1.Balance/SettleInvoice")
        #expect(
            trail.contains { $0.action == "ledger.credit" && $0.paymentId == invoiceID && $0.actor == "operator" }
        )
        // Everything was attributed, in write order.
        #expect(!trail.contains { $0.via == "unattributed" || $0.actor == "billingd" })
        #expect(trail.map(\.id) == trail.map(\.id).sorted())
        #expect(trail.allSatisfy { $0.accountId == "acc-audit" })

        // One payment's entries only; an operator sees who settled it.
        let onlyInvoice = try await audit(try operations("internal"), account: "acc-audit", payment: invoiceID)
        #expect(!onlyInvoice.entries.isEmpty)
        #expect(onlyInvoice.entries.contains { $0.action == "payment.paid" && $0.actor == "operator/dev" })
        #expect(onlyInvoice.entries.allSatisfy { $0.paymentId == invoiceID })

        // Pages: two at a time, each once, in order, to the end.
        var paged: [UInt64] = []
        var token = ""
        repeat {
            let page = try await audit(try operations("operator"), account: "acc-audit", pageSize: 2, token: token)
            paged += page.entries.map(\.id)
            token = page.nextPageToken
        } while !token.isEmpty
        #expect(paged == trail.map(\.id))
    }

    @Test func anAccountReadsOnlyItsOwnTrailAndBadRequestsAreRefused() async throws {
        let f = try await ServerFixture()
        defer { Task { await f.stop() } }
        _ = try await f.account("acc-a")
        _ = try await f.account("acc-b")
        let client = BillingV1.OperationsClient(transport: try f.transport(try f.accountCertificate("acc-a")))
        let internalClient = BillingV1.OperationsClient(transport: try f.transport("internal"))
        #expect(!(try await audit(client, account: "acc-a").entries.isEmpty))

        func code(_ body: () async throws -> Void) async -> StatusCode? {
            do {
                try await body()
                return nil
            } catch let error as RPCError {
                return error.code
            } catch {
                return nil
            }
        }
        #expect(await code { _ = try await audit(client, account: "acc-b") } == .permissionDenied)
        #expect(await code { _ = try await audit(client, account: "acc-nobody") } == .permissionDenied)
        #expect(await code { _ = try await audit(internalClient, account: "acc-nobody") } == .notFound)
        #expect(await code { _ = try await audit(internalClient, account: "") } == .invalidArgument)
        #expect(await code { _ = try await audit(internalClient, account: "acc-a", pageSize: 201) } == .invalidArgument)
        #expect(
            await code { _ = try await audit(internalClient, account: "acc-a", token: "not a token") }
                == .invalidArgument
        )
        // A page token of one account's trail does not page another's.
        let first = try await audit(internalClient, account: "acc-b", pageSize: 1)
        #expect(!first.nextPageToken.isEmpty)
        #expect(
            await code { _ = try await audit(internalClient, account: "acc-a", token: first.nextPageToken) }
                == .invalidArgument
        )
        #expect(
            await code { _ = try await audit(internalClient, account: "acc-a", payment: "pay_\u{0}x") }
                == .invalidArgument
        )
    }

    @Test func theCommandLineListsTheTrail() async throws {
        let f = try await ServerFixture()
        defer { Task { await f.stop() } }
        let (_, payer) = try await f.account("acc-cli-audit")
        _ = try await f.clients("internal").balance.createTopUp(
            topUpRequest(account: "acc-cli-audit", payer: payer.id, minor: 1_000, option: .invoice)
        )
        let text = try await f.billing(["audit", "--account", "acc-cli-audit"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("WHO"))
        #expect(text.stdout.contains("payment.created"))
        #expect(text.stdout.contains("/billing.v1.Balance/CreateTopUp"))
        let machine = try await f.billing(["audit", "--account", "acc-cli-audit", "--json", "--limit", "1", "--all"])
        #expect(machine.status == 0, "\(machine.stderr)")
        let entries = try #require(try json(machine.stdout)["entries"] as? [[String: Any]])
        #expect(entries.count >= 3)
        #expect(
            entries.contains {
                $0["action"] as? String == "account.created" && $0["actor"] as? String == "internal/dev"
            }
        )
        let refused = try await f.billing(["audit", "--account", "acc-cli-audit", "--limit", "0"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("--limit"))
    }
}
