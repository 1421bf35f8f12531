import BillingAPI
import BillingMessages
import BillingPanel
import Foundation
import Logging
import NIOCore
import Testing

@testable import BillingServer

/// billing-panel over plain HTTP, as an attacker would send it: forms without
/// the CSRF token, a session id planted before sign-in, markup in billingd's
/// data, another account's ids, oversized bodies, live-stream limits and
/// resumption. (The person's view is PanelBrowserTests.)
@Suite struct PanelTests {
    /// billingd in this process and a panel on a free port in front of it.
    final class Fixture: Sendable {
        let billingd: ServerFixture
        let port: Int
        let task: Task<Void, any Error>

        init(configure: (inout PanelConfiguration) -> Void = { _ in }) async throws {
            billingd = try await ServerFixture(pollSeconds: 60)
            var configuration = PanelConfiguration()
            configuration.listen = "127.0.0.1:0"
            configuration.billingd.address = "127.0.0.1:\(billingd.application.port)"
            configuration.dataDirectory = billingd.directory
            configure(&configuration)
            var logger = Logger(label: "panel-test")
            // Stopping by cancellation makes Hummingbird log an error.
            logger.logLevel = .critical
            let panel = try Panel(configuration: configuration, logger: logger)
            let (ports, listening) = AsyncStream.makeStream(of: Int.self)
            let application = try panel.application { listening.yield($0) }
            task = Task { try await application.run() }
            var iterator = ports.makeAsyncIterator()
            port = try #require(await iterator.next())
        }

        func stop() async {
            task.cancel()
            _ = await task.result
            await billingd.stop()
        }

        /// One request on its own connection; the answer whole.
        func send(
            _ method: String,
            _ path: String,
            cookie: String? = nil,
            body: String? = nil,
            headers: [String: String] = [:]
        ) async throws -> Reply {
            var request =
                "\(method) \(path) HTTP/1.1\r\nHost: \(headers["Host"] ?? "127.0.0.1:\(port)")\r\nConnection: close\r\n"
            if let cookie { request += "Cookie: panel_session=\(cookie)\r\n" }
            for (name, value) in headers where name != "Host" { request += "\(name): \(value)\r\n" }
            if let body {
                request += "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.utf8.count)\r\n"
            }
            request += "\r\n" + (body ?? "")
            let text = try await RawHTTP.exchange(
                host: "127.0.0.1",
                port: port,
                request: request,
                group: billingd.clientGroup
            )
            return Reply(text)
        }

        /// A signed-in session: its cookie and CSRF token.
        func signIn(_ account: String) async throws -> (cookie: String, csrf: String) {
            let form = try await send("GET", "/signin")
            let first = try #require(form.cookie)
            let reply = try await send(
                "POST",
                "/signin",
                cookie: first,
                body: "csrf=\(try #require(form.csrf))&account=\(account)"
            )
            #expect(reply.status == 303 && reply.header("location") == "/topup", "\(reply.text)")
            let cookie = try #require(reply.cookie)
            let page = try await send("GET", "/topup", cookie: cookie)
            return (cookie, try #require(page.csrf, "\(page.text)"))
        }

        func payments(_ account: String) async throws -> [BillingV1.Payment] {
            var list = BillingV1.ListPaymentsRequest()
            list.accountId = account
            return try await billingd.clients("internal").balance.listPayments(list).payments
        }
    }

    struct Reply {
        let text: String

        init(_ text: String) { self.text = text }

        var status: Int { Int(text.split(separator: " ", maxSplits: 2).dropFirst().first ?? "") ?? 0 }
        var body: String { text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n") }

        func header(_ name: String) -> String? {
            let head = text.components(separatedBy: "\r\n\r\n").first ?? ""
            for line in head.components(separatedBy: "\r\n").dropFirst() {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2, parts[0].lowercased() == name.lowercased() {
                    return parts[1].trimmingCharacters(in: .whitespaces)
                }
            }
            return nil
        }

        var cookie: String? {
            header("set-cookie")?.firstMatch(of: /panel_session=([0-9a-f]{64})/).map { String($0.1) }
        }
        var csrf: String? { text.firstMatch(of: /name="csrf" value="([0-9a-f]{64})"/).map { String($0.1) } }
        var requestToken: String? {
            text.firstMatch(of: /name="request" value="([0-9a-f]{64})"/).map { String($0.1) }
        }
    }

    func provision(_ fixture: Fixture, _ account: String, payer name: String = "Jane Doe") async throws -> String {
        try await provision(PanelFixtureView(billingd: fixture.billingd), account, payer: name)
    }

    /// What provisioning needs of a fixture: its billingd.
    struct PanelFixtureView {
        let billingd: ServerFixture
    }

    func provision(
        _ fixture: PanelFixtureView,
        _ account: String,
        payer name: String = "Jane Doe"
    ) async throws
        -> String
    {
        let clients = try fixture.billingd.clients("internal")
        var create = BillingV1.CreateAccountRequest()
        create.accountId = account
        create.displayName = account
        _ = try await clients.accounts.createAccount(create)
        var payer = BillingV1.CreatePayerRequest()
        payer.accountId = account
        payer.displayName = name
        payer.email = "\(account)@example.com"
        return try await clients.accounts.createPayer(payer).id
    }

    @Test func everyFormRefusesAPostWithoutTheSessionsTokenAndARepeatedFormPaysOnce() async throws {
        let fixture = try await Fixture()
        do {
            let payer = try await provision(fixture, "acc-csrf")
            let form = try await fixture.send("GET", "/signin")
            let planted = try #require(form.cookie)
            // Sign-in itself needs the token (login CSRF).
            let refused = try await fixture.send("POST", "/signin", cookie: planted, body: "account=acc-csrf")
            #expect(refused.status == 403, "\(refused.text)")
            let (cookie, csrf) = try await fixture.signIn("acc-csrf")
            // Sign-in gives a new session id: one planted before is worth nothing.
            #expect(cookie != planted)
            let old = try await fixture.send("GET", "/topup", cookie: planted)
            #expect(old.status == 303 && old.header("location") == "/signin", "\(old.text)")

            let page = try await fixture.send("GET", "/topup", cookie: cookie)
            let request = try #require(page.requestToken)
            let fields = "payer=\(payer)&amount=100&option=invoice&request=\(request)"
            for (path, body) in [
                ("/topup", fields), ("/topup", fields + "&csrf=" + String(repeating: "0", count: 64)),
                ("/topup", fields + "&csrf="), ("/renewals", "option=balance&periods%5Bs%5D=1"),
                ("/migration/pay", "order=mo_1&option=balance"), ("/signout", ""),
            ] {
                let reply = try await fixture.send("POST", path, cookie: cookie, body: body)
                #expect(reply.status == 403 || path == "/signout", "\(path): \(reply.status)")
            }
            #expect(try await fixture.payments("acc-csrf").isEmpty)
            // Still signed in (the forged sign-out did nothing).
            #expect(try await fixture.send("GET", "/topup", cookie: cookie).status == 200)

            let first = try await fixture.send("POST", "/topup", cookie: cookie, body: fields + "&csrf=\(csrf)")
            #expect(first.status == 303, "\(first.text)")
            let location = try #require(first.header("location"))
            #expect(location.hasPrefix("/history?payment=pay_"), "\(location)")
            // The same form sent again (a double click, a reload) is the same payment.
            let again = try await fixture.send("POST", "/topup", cookie: cookie, body: fields + "&csrf=\(csrf)")
            #expect(again.header("location") == location)
            #expect(try await fixture.payments("acc-csrf").count == 1)

            let out = try await fixture.send("POST", "/signout", cookie: cookie, body: "csrf=\(csrf)")
            #expect(out.status == 303 && out.header("location") == "/signin")
            #expect(try await fixture.send("GET", "/history", cookie: cookie).header("location") == "/signin")
        } catch {
            Issue.record(error)
        }
        await fixture.stop()
    }

    @Test func textFromBillingdIsEscapedAndPagesCarryTheSecurityHeaders() async throws {
        let fixture = try await Fixture()
        do {
            _ = try await provision(fixture, "acc-xss", payer: "<script>alert(1)</script>\"'&")
            let (cookie, _) = try await fixture.signIn("acc-xss")
            let page = try await fixture.send("GET", "/topup", cookie: cookie)
            #expect(page.status == 200)
            #expect(!page.body.contains("<script>alert"), "\(page.body)")
            #expect(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"))
            let policy = try #require(page.header("content-security-policy"))
            #expect(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"))
            #expect(page.header("x-content-type-options") == "nosniff")
            #expect(page.header("cache-control") == "no-store")
            #expect(page.header("set-cookie") == nil, "a signed-in page set a new cookie")
            let cookieLine = try #require(try await fixture.send("GET", "/signin").header("set-cookie"))
            #expect(cookieLine.contains("HttpOnly") && cookieLine.contains("SameSite=Lax"))
            // A query value never reaches the page unescaped either.
            let typed = try await fixture.send("GET", "/topup?amount=%22%3E%3Cimg%20src%3Dx%3E", cookie: cookie)
            #expect(!typed.body.contains("<img src=x>") && typed.body.contains("&quot;&gt;&lt;img src=x&gt;"))
        } catch {
            Issue.record(error)
        }
        await fixture.stop()
    }

    @Test func requestsForAnotherNameOrFromAnotherSiteAreRefused() async throws {
        let fixture = try await Fixture()
        do {
            let payer = try await provision(fixture, "acc-host")
            let (cookie, csrf) = try await fixture.signIn("acc-host")
            let page = try await fixture.send("GET", "/topup", cookie: cookie)
            let request = try #require(page.requestToken)
            let fields = "csrf=\(csrf)&payer=\(payer)&amount=10&option=invoice&request=\(request)"
            // DNS rebinding: a page of rebind.example re-pointed its name at 127.0.0.1.
            let rebound = try await fixture.send(
                "POST",
                "/topup",
                cookie: cookie,
                body: fields,
                headers: ["Host": "rebind.example:\(fixture.port)"]
            )
            #expect(rebound.status == 421, "\(rebound.status)")
            for (name, value) in [
                ("Origin", "http://evil.example"), ("Origin", "null"), ("Sec-Fetch-Site", "cross-site"),
                ("Sec-Fetch-Site", "same-site"),
            ] {
                let reply = try await fixture.send(
                    "POST",
                    "/topup",
                    cookie: cookie,
                    body: fields,
                    headers: [name: value]
                )
                #expect(reply.status == 403, "\(name): \(value) → \(reply.status)")
            }
            #expect(try await fixture.payments("acc-host").isEmpty)
            // The panel's own pages, as a browser sends them, pass.
            let own = try await fixture.send(
                "POST",
                "/topup",
                cookie: cookie,
                body: fields,
                headers: ["Origin": "http://127.0.0.1:\(fixture.port)", "Sec-Fetch-Site": "same-origin"]
            )
            #expect(own.status == 303, "\(own.text)")
            #expect(
                try await fixture.send("GET", "/topup", headers: ["Host": "localhost:\(fixture.port)"]).status == 303
            )
            // Paying at localhost comes back to localhost (the cookie belongs to that name).
            let again = try await fixture.send("GET", "/topup", cookie: cookie)
            let viaLocalhost = try await fixture.send(
                "POST",
                "/topup",
                cookie: cookie,
                body:
                    "csrf=\(csrf)&payer=\(payer)&amount=12&option=system%3Asandbox&request=\(try #require(again.requestToken))",
                headers: ["Host": "localhost:\(fixture.port)"]
            )
            let sandboxPage = try #require(viaLocalhost.header("location"), "\(viaLocalhost.text)")
            let back = try await fixture.billingd.press(sandboxPage, approve: true)
            #expect(back.location == "http://localhost:\(fixture.port)/history", "\(back.location)")
            // A live page of another account (the browser signed in as another since) gets nothing.
            let other = try await fixture.send("GET", "/history/events?account=acc-someone", cookie: cookie)
            #expect(other.status == 401)
        } catch {
            Issue.record(error)
        }
        await fixture.stop()
    }

    @Test func anInvoiceIsDownloadedFromTheHistoryAndOnlyByItsAccount() async throws {
        let fixture = try await Fixture()
        do {
            let mine = try await provision(fixture, "acc-inv-mine")
            let theirs = try await provision(fixture, "acc-inv-theirs")
            let clients = try fixture.billingd.clients("internal")
            let invoice = try await clients.balance.createTopUp(
                topUpRequest(account: "acc-inv-mine", payer: mine, minor: 42_00, option: .invoice)
            )
            let other = try await clients.balance.createTopUp(
                topUpRequest(account: "acc-inv-theirs", payer: theirs, minor: 7_00, option: .invoice)
            )
            let number = try #require(invoice.payment?.invoiceNumber)
            let (cookie, _) = try await fixture.signIn("acc-inv-mine")
            let history = try await fixture.send("GET", "/history", cookie: cookie)
            let paymentID = try #require(invoice.payment?.id)
            #expect(history.body.contains("href=\"/invoices/\(paymentID).pdf\""), "\(history.body)")
            #expect(try await fixture.send("GET", "/invoices/\(paymentID).html", cookie: cookie).status == 200)
            let pdf = try await fixture.send("GET", "/invoices/\(number).pdf", cookie: cookie)
            #expect(pdf.status == 200 && pdf.header("content-type") == "application/pdf", "\(pdf.status)")
            #expect(pdf.header("content-disposition") == "attachment; filename=\"\(number).pdf\"")
            #expect(pdf.body.hasPrefix("%PDF-"))
            let page = try await fixture.send("GET", "/invoices/\(number).html", cookie: cookie)
            #expect(page.status == 200 && page.body.contains(number) && page.body.contains("42.00 USD"))
            #expect(
                page.header("content-security-policy")?.hasPrefix("default-src 'none'; style-src 'unsafe-inline'")
                    == true
            )
            // Another account's, an unknown one, a bad name: the same 404; signed out: the sign-in page.
            for path in [
                "/invoices/\(other.payment?.invoiceNumber ?? "x").pdf", "/invoices/INV-2000-000001.html",
                "/invoices/\(number).exe", "/invoices/..%2F..%2Fetc.pdf",
            ] {
                let refused = try await fixture.send("GET", path, cookie: cookie)
                #expect(refused.status == 404, "\(path): \(refused.status)")
                #expect(!refused.body.contains("%PDF") && !refused.body.contains("7.00 USD"))
            }
            #expect(try await fixture.send("GET", "/invoices/\(number).pdf").status == 303)
        } catch {
            Issue.record(error)
        }
        await fixture.stop()
    }

    @Test func automaticRenewalIsSetAndTurnedOffOnTheRenewalsPage() async throws {
        let fixture = try await Fixture()
        do {
            let payer = try await provision(fixture, "acc-auto-panel")
            _ = try await provision(fixture, "acc-auto-other")
            let clients = try fixture.billingd.clients("internal")
            for (id, account, days) in [("web-7", "acc-auto-panel", 7), ("theirs-1", "acc-auto-other", 30)] {
                var service = BillingV1.RenewableService()
                service.id = id
                service.accountId = account
                service.displayName = "Service \(id)"
                service.pricePerPeriod = .usd(5_00)
                service.periodDays = UInt32(days)
                service.expiresAtUnixMs = Int64(Date().timeIntervalSince1970 * 1000) + 60 * 86_400_000
                var upsert = BillingV1.UpsertRenewableServiceRequest()
                upsert.service = service
                _ = try await clients.renewal.upsertRenewableService(upsert)
            }
            let (cookie, csrf) = try await fixture.signIn("acc-auto-panel")
            let page = try await fixture.send("GET", "/renewals", cookie: cookie)
            #expect(page.body.contains("data-auto=\"web-7\">Off<"), "\(page.body)")
            func post(_ body: String, csrf token: String? = csrf) async throws -> Reply {
                try await fixture.send(
                    "POST",
                    "/renewals/auto",
                    cookie: cookie,
                    body: (token.map { "csrf=\($0)&" } ?? "") + body
                )
            }
            let saved = try await post("service=web-7&days=7&payer=\(payer)")
            #expect(saved.status == 303, "\(saved.text)")
            let after = try await fixture.send("GET", "/renewals", cookie: cookie)
            #expect(
                after.body.contains("7 days before expiry, from the balance, then Jane Doe&#39;s default saved method")
            )
            var list = BillingV1.ListRenewableServicesRequest()
            list.accountId = "acc-auto-panel"
            #expect(try await clients.renewal.listRenewableServices(list).services.first?.autoRenewal?.payerId == payer)
            // Refused: no token, a lead not offered, one longer than the period, another account's service.
            #expect(try await post("service=web-7&days=3", csrf: nil).status == 403)
            #expect(try await post("service=web-7&days=5").status == 400)
            let long = try await post("service=web-7&days=14")
            #expect(long.status == 400 && long.body.contains("period of at least 14 days"), "\(long.body)")
            let theirs = try await post("service=theirs-1&days=7")
            #expect(theirs.status == 400 && theirs.body.contains("not found"), "\(theirs.body)")
            list.accountId = "acc-auto-other"
            #expect(try await clients.renewal.listRenewableServices(list).services.first?.autoRenewal == nil)
            #expect(try await post("service=web-7&days=0").status == 303)
            list.accountId = "acc-auto-panel"
            #expect(try await clients.renewal.listRenewableServices(list).services.first?.autoRenewal == nil)
        } catch {
            Issue.record(error)
        }
        await fixture.stop()
    }

    @Test func anotherAccountsMigrationOrderReadsAsNoneAndCannotBePaid() async throws {
        let fixture = try await Fixture()
        do {
            _ = try await provision(fixture, "acc-mine")
            _ = try await provision(fixture, "acc-other")
            // The other account has money, so "from the balance" could pay.
            let clients = try fixture.billingd.clients("internal")
            var order = BillingV1.CreateMigrationOrderRequest()
            order.accountId = "acc-other"
            order.externalId = "m-1"
            order.description = "theirs"
            order.serverPrice = .usd(100)
            let theirs = try await clients.migration.createMigrationOrder(order)
            let (cookie, csrf) = try await fixture.signIn("acc-mine")
            let page = try await fixture.send("GET", "/migration?order=\(theirs.id)", cookie: cookie)
            #expect(page.status == 404)
            #expect(!page.body.contains("theirs"), "another account's order was shown")
            let none = try await fixture.send("GET", "/migration?order=mo_nonexistent", cookie: cookie)
            #expect(none.status == 404)
            let paid = try await fixture.send(
                "POST",
                "/migration/pay",
                cookie: cookie,
                body: "csrf=\(csrf)&order=\(theirs.id)&option=invoice&request=\(String(repeating: "a", count: 64))"
            )
            #expect(paid.status == 404, "\(paid.text)")
            var get = BillingV1.GetMigrationOrderRequest()
            get.orderId = theirs.id
            #expect(try await clients.migration.getMigrationOrder(get).status == .awaitingPayment)
            #expect(try await fixture.payments("acc-other").isEmpty)
            #expect(try await fixture.payments("acc-mine").isEmpty)
        } catch {
            Issue.record(error)
        }
        await fixture.stop()
    }

    @Test func badInputIsRefusedWithAMessageAndChangesNothing() async throws {
        let fixture = try await Fixture()
        do {
            let payer = try await provision(fixture, "acc-bad")
            let (cookie, csrf) = try await fixture.signIn("acc-bad")
            let token = String(repeating: "b", count: 64)
            let big = String(repeating: "x", count: Panel.maxFormBytes + 1)
            let tooLarge = try await fixture.send("POST", "/topup", cookie: cookie, body: "csrf=\(csrf)&amount=\(big)")
            #expect(tooLarge.status == 413, "\(tooLarge.status)")
            for (fields, message) in [
                ("amount=0.49&option=invoice", "must be from 0.50 USD to 15000.00 USD"),
                ("amount=15000.01&option=invoice", "must be from 0.50 USD to 15000.00 USD"),
                ("amount=-5&option=invoice", "must be from"),
                ("amount=1e3&option=invoice", "Enter an amount like 100"),
                ("amount=100&option=method:pm_not_ours", "Choose one of the payment methods shown"),
                ("amount=100&option=system:bitcoin", "Choose one of the payment methods shown"),
                ("amount=100", "Choose a payment method"),
            ] {
                let reply = try await fixture.send(
                    "POST",
                    "/topup",
                    cookie: cookie,
                    body: "csrf=\(csrf)&payer=\(payer)&request=\(token)&\(fields)"
                )
                #expect(reply.status == 400, "\(fields): \(reply.status)")
                #expect(reply.body.contains(message), "\(fields): no \"\(message)\"")
            }
            let otherPayer = try await fixture.send(
                "POST",
                "/topup",
                cookie: cookie,
                body: "csrf=\(csrf)&payer=pyr_someone_else&request=\(token)&amount=10&option=invoice"
            )
            #expect(otherPayer.status == 400 && otherPayer.body.contains("Choose a payer of this account"))
            let history = try await fixture.send("GET", "/history?from=2026-02-30&status=lost", cookie: cookie)
            #expect(history.body.contains("must be a date") && history.body.contains("Unknown status filter"))
            #expect(try await fixture.payments("acc-bad").isEmpty)
            let renewal = try await fixture.send("GET", "/renewals?periods%5Bvps%5D=999", cookie: cookie)
            #expect(renewal.status == 200, "no services: the page says so")
        } catch {
            Issue.record(error)
        }
        await fixture.stop()
    }

    /// Opens a live stream and returns what came until `needle`, and the
    /// connection (the server closes it when the stream ends).
    func stream(
        _ fixture: Fixture,
        cookie: String,
        lastEventID: UInt64? = nil,
        until needle: String
    ) async throws -> (text: String, channel: any Channel) {
        let resume = lastEventID.map { "Last-Event-ID: \($0)\r\n" } ?? ""
        return try await RawHTTP.open(
            host: "127.0.0.1",
            port: fixture.port,
            request:
                "GET /history/events?after=0 HTTP/1.1\r\nHost: 127.0.0.1:\(fixture.port)\r\nConnection: close\r\nCookie: panel_session=\(cookie)\r\n\(resume)\r\n",
            until: needle,
            group: fixture.billingd.clientGroup
        )
    }

    @Test(.timeLimit(.minutes(3)))
    func liveEventsResumeAfterTheLastEventIDAndEndWhenTheyCannotGoOn() async throws {
        let fixture = try await Fixture {
            $0.maxLiveStreamsPerSession = 1
            $0.maxLiveStreams = 2
        }
        do {
            let payer = try await provision(fixture, "acc-live")
            let clients = try fixture.billingd.clients("internal")
            for _ in 0..<2 {
                _ = try await clients.balance.createTopUp(
                    topUpRequest(account: "acc-live", payer: payer, minor: 1000, option: .invoice)
                )
            }
            let (cookie, csrf) = try await fixture.signIn("acc-live")
            // From the start: event 1 first.
            let first = try await stream(fixture, cookie: cookie, until: "id: 2\n")
            #expect(first.text.contains("text/event-stream"))
            #expect(first.text.contains("id: 1\nevent: payment\n"), "\(first.text)")
            // A reconnect with Last-Event-ID 1 resumes at 2, whatever `after`
            // says; the session's one place goes to it and the older stream ends.
            let second = try await stream(fixture, cookie: cookie, lastEventID: 1, until: "id: 2\n")
            #expect(second.text.hasPrefix("HTTP/1.1 200"), "\(second.text)")
            #expect(!second.text.contains("id: 1\n") && second.text.contains("id: 2\n"), "\(second.text)")
            try await first.channel.closeFuture.get()
            // …and its watch on billingd ends with it (not only the panel's side).
            let hub = fixture.billingd.application.hub
            try await until { hub.subscriberCount == 1 }
            #expect(hub.subscriberCount == 1)

            // The panel's places: another session takes the second, a third session is refused.
            let (other, _) = try await fixture.signIn("acc-live")
            let third = try await stream(fixture, cookie: other, until: "retry: 3000")
            let (refusedCookie, _) = try await fixture.signIn("acc-live")
            let refused = try await fixture.send("GET", "/history/events", cookie: refusedCookie)
            #expect(refused.status == 429 && refused.header("retry-after") != nil, "\(refused.text)")

            // Signing out ends that session's stream at once.
            let out = try await fixture.send("POST", "/signout", cookie: cookie, body: "csrf=\(csrf)")
            #expect(out.status == 303)
            try await second.channel.closeFuture.get()
            try await until { hub.subscriberCount == 1 }
            #expect(hub.subscriberCount == 1, "the signed-out page's watch still runs on billingd")
            // billingd going away ends the other: the browser reconnects and resumes.
            await fixture.billingd.application.shutdown()
            try await third.channel.closeFuture.get()
            // Not signed in: no stream.
            #expect(try await fixture.send("GET", "/history/events").status == 401)
        } catch {
            Issue.record(error)
        }
        await fixture.stop()
    }

    /// Waits (60 s at most) until `condition` holds; the #expect after it says what failed.
    private func until(_ condition: () -> Bool) async throws {
        let patience = ContinuousClock.now.advanced(by: .seconds(60))
        while !condition(), ContinuousClock.now < patience { try await Task.sleep(for: .milliseconds(10)) }
    }

    @Test(.timeLimit(.minutes(3)))
    func aStopEndsOpenLivePages() async throws {
        let billingd = try await ServerFixture(pollSeconds: 60)
        let panel = try await Daemon(
            directory: billingd.directory,
            executable: "billing-panel",
            arguments: [
                "--listen", "127.0.0.1:0", "--billingd", "127.0.0.1:\(billingd.application.port)", "--data-dir",
                billingd.directory,
            ]
        )
        do {
            _ = try await provision(PanelFixtureView(billingd: billingd), "acc-stop")
            try await panel.waitFor("billing-panel listening")
            let port = try #require(
                panel.text.firstMatch(of: /url=http:\/\/127\.0\.0\.1:(\d+)/).flatMap { Int($0.1) }
            )
            let form = try await RawHTTP.exchange(
                host: "127.0.0.1",
                port: port,
                request: "GET /signin HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n",
                group: billingd.clientGroup
            )
            let anonymous = try #require(Reply(form).cookie)
            let csrf = try #require(Reply(form).csrf)
            let body = "csrf=\(csrf)&account=acc-stop"
            let signedIn = try await RawHTTP.exchange(
                host: "127.0.0.1",
                port: port,
                request:
                    "POST /signin HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\nCookie: panel_session=\(anonymous)\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)",
                group: billingd.clientGroup
            )
            let cookie = try #require(Reply(signedIn).cookie)
            let open = try await RawHTTP.open(
                host: "127.0.0.1",
                port: port,
                request:
                    "GET /history/events HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nCookie: panel_session=\(cookie)\r\n\r\n",
                until: "retry: 3000",
                group: billingd.clientGroup
            )
            #expect(open.text.hasPrefix("HTTP/1.1 200"))
            panel.process.terminate()
            // It stops although the page stays open.
            #expect(await panel.process.wait() == .exited(0))
            try? await open.channel.close()
        } catch {
            Issue.record(error)
        }
        panel.process.terminate()
        _ = await panel.exited()
        await billingd.stop()
    }

    @Test func theHistoryPagesThroughEveryPaymentAndARenewalCanGoToAPaymentSystem() async throws {
        let fixture = try await Fixture { $0.historyPageSize = 2 }
        do {
            let payer = try await provision(fixture, "acc-pages")
            let clients = try fixture.billingd.clients("internal")
            for cents in [101, 102, 103, 104, 105] {
                _ = try await clients.balance.createTopUp(
                    topUpRequest(account: "acc-pages", payer: payer, minor: Int64(cents), option: .invoice)
                )
            }
            let (cookie, csrf) = try await fixture.signIn("acc-pages")
            var seen: [String] = []
            var path: String? = "/history?status=new"
            while let next = path, seen.count < 10 {
                let page = try await fixture.send("GET", next, cookie: cookie)
                let rows = page.body.matches(of: /<td class="amount">([0-9.]+) USD<\/td>/).map { String($0.1) }
                #expect(rows.count <= 2)
                seen += rows
                path = page.body.firstMatch(of: /href="([^"]+)" id="next-page"/).map {
                    String($0.1).replacingOccurrences(of: "&amp;", with: "&")
                }
                if path != nil { #expect(path?.contains("status=new") == true, "the filter is kept across pages") }
            }
            #expect(seen == ["1.05", "1.04", "1.03", "1.02", "1.01"], "\(seen)")

            var service = BillingV1.RenewableService()
            service.id = "web-1"
            service.accountId = "acc-pages"
            service.displayName = "Web hosting"
            service.pricePerPeriod = .usd(700)
            service.periodDays = 30
            service.expiresAtUnixMs = Int64(Date().timeIntervalSince1970 * 1000) + 86_400_000
            var upsert = BillingV1.UpsertRenewableServiceRequest()
            upsert.service = service
            _ = try await clients.renewal.upsertRenewableService(upsert)
            let quote = try await fixture.send("GET", "/renewals?periods%5Bweb-1%5D=3", cookie: cookie)
            #expect(quote.body.contains("21.00 USD"), "\(quote.body)")
            let request = try #require(quote.requestToken)
            // A total other than the current one (the price changed meanwhile) is refused.
            let stale = try await fixture.send(
                "POST",
                "/renewals",
                cookie: cookie,
                body:
                    "csrf=\(csrf)&request=\(request)&payer=\(payer)&periods%5Bweb-1%5D=3&expected=2000&toPay=2100&option=system%3Asandbox"
            )
            #expect(stale.status == 400, "\(stale.status)")
            let paying = try await fixture.send(
                "POST",
                "/renewals",
                cookie: cookie,
                body:
                    "csrf=\(csrf)&request=\(String(repeating: "c", count: 64))&payer=\(payer)&periods%5Bweb-1%5D=3&expected=2100&toPay=2100&option=system%3Asandbox"
            )
            #expect(paying.status == 303, "\(paying.text)")
            #expect(paying.header("location")?.contains("/pay/") == true, "\(paying.text)")
            let renewals = try await fixture.payments("acc-pages").filter { $0.purpose == .renewal }
            #expect(renewals.count == 1 && renewals.first?.amount?.amountMinorUnits == 2100)
        } catch {
            Issue.record(error)
        }
        await fixture.stop()
    }

    @Test func theExecutableExplainsItselfAndRefusesABadConfiguration() async throws {
        let panel = try #require(Executable.path("billing-panel"), "build billing-panel first (swift build)")
        let help = await Executable.run(panel, ["--help"])
        #expect(help.status == 0 && help.stdout.contains("Examples:") && help.stdout.contains("--check-config"))
        let wide = await Executable.run(panel, ["--listen", "0.0.0.0:7080", "--check-config"])
        #expect(wide.status == 78 && wide.stderr.contains("loopback"), "\(wide.stderr)")
        let missing = await Executable.run(panel, ["--config", "/nonexistent/panel.json", "--check-config"])
        #expect(missing.status == 78 && missing.stderr.contains("cannot read"), "\(missing.stderr)")
        // No billingd certificates where it looks: said, with what to do.
        let noCertificates = await Executable.run(
            panel,
            ["--data-dir", "/nonexistent", "--check-config"],
            directory: FileManager.default.temporaryDirectory.path
        )
        #expect(noCertificates.status == 78 && noCertificates.stderr.contains("billingd-data/tls"))
    }

    @Test func theConfigurationRefusesUnknownSettingsAndNonLoopbackAddresses() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "panel-config-\(UUID().uuidString)"
        )
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("panel.json").path
        try #"{"listen": "127.0.0.1:7080", "billingd": {"adress": "x:1"}}"#.write(
            toFile: file,
            atomically: true,
            encoding: .utf8
        )
        #expect(throws: PanelConfigurationError.self) { try PanelConfiguration.load(path: file, environment: [:]) }
        do {
            _ = try PanelConfiguration.load(path: file, environment: [:])
        } catch let error as PanelConfigurationError {
            #expect(error.problems.contains { $0.contains("unknown setting billingd.adress") }, "\(error)")
        }
        var configuration = PanelConfiguration()
        configuration.listen = "0.0.0.0:7080"
        configuration.historyPageSize = 500
        configuration.publicURL = "javascript:alert(1)"
        configuration.billingd.certificate = "only-one.pem"
        let problems = configuration.validate()
        #expect(problems.contains { $0.contains("loopback") })
        #expect(problems.contains { $0.contains("historyPageSize") })
        #expect(problems.contains { $0.contains("publicURL") })
        #expect(problems.contains { $0.contains("go together") })
        // The example in deploy/ is valid.
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy/billing-panel.example.json").path
        let loaded = try PanelConfiguration.load(path: example, environment: [:])
        #expect(loaded.validate().isEmpty, "\(loaded.validate())")
        #expect(
            try PanelConfiguration.load(path: nil, environment: ["BILLING_PANEL_LISTEN": "127.0.0.1:9"]).listen
                == "127.0.0.1:9"
        )
    }
}
