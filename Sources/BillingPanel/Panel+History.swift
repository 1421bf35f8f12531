internal import BillingAPI
internal import BillingMessages
internal import BillingRPC
internal import Foundation
internal import Hummingbird
internal import NIOCore
internal import ServiceLifecycle

/// The payment history: filters, pages, and statuses that change live.
///
/// Live updates: the page is rendered from billingd's state as of an account
/// event sequence (GetBalance's `as_of_sequence`, read first), and the script
/// follows `GET /history/events?after=<that sequence>`, a Server-Sent Events
/// stream the panel feeds from billingd's WatchPayments. Each event carries
/// its sequence as the SSE id, so a browser that reconnects sends
/// `Last-Event-ID` and resumes exactly after the last event it saw.
extension Panel {
    struct HistoryQuery: Decodable {
        var status: String?
        var purpose: String?
        var payer: String?
        var from: String?
        var to: String?
        var page: String?
        var payment: String?
    }

    func historyPage(_ context: SignedIn, _ request: Request) async throws -> Response {
        let query =
            (try? URLEncodedFormDecoder().decode(HistoryQuery.self, from: request.uri.query ?? "")) ?? HistoryQuery()
        var balanceRequest = BillingV1.GetBalanceRequest()
        balanceRequest.accountId = context.account
        let balance: BillingV1.GetBalanceResponse
        do {
            balance = try await billingd.balance.getBalance(balanceRequest, options: billingd.options)
        } catch {
            throw Problem(error)
        }
        // Back from a payment system's page: ask billingd to check that
        // payment now (the poller would within a minute); the page shows the
        // result live. Asked again on each visit until it is no longer New.
        if let awaited = context.visit.session.awaitedPaymentID {
            let balanceClient = billingd.balance
            let options = billingd.options
            let sessions = sessions
            let sessionID = context.sessionID
            Task {
                var refresh = BillingV1.RefreshPaymentRequest()
                refresh.paymentId = awaited
                guard let payment = try? await balanceClient.refreshPayment(refresh, options: options),
                    payment.status != .new
                else { return }
                sessions.update(sessionID) { session in
                    if session.awaitedPaymentID == awaited { session.awaitedPaymentID = nil }
                }
            }
        }
        var problems: [String] = []
        var list = BillingV1.ListPaymentsRequest()
        list.accountId = context.account
        switch query.status ?? "" {
        case "": break
        case "new": list.statuses = [.new]
        case "paid": list.statuses = [.paid]
        case "cancelled": list.statuses = [.cancelled]
        default: problems.append("Unknown status filter.")
        }
        switch query.purpose ?? "" {
        case "": break
        case "top-up": list.purposes = [.topUp]
        case "renewal": list.purposes = [.renewal]
        case "migration": list.purposes = [.migration]
        default: problems.append("Unknown purpose filter.")
        }
        var payersRequest = BillingV1.ListPayersRequest()
        payersRequest.accountId = context.account
        let payers: [BillingV1.Payer]
        do {
            payers = try await billingd.methods.listPayers(payersRequest, options: billingd.options).payers
        } catch {
            throw Problem(error)
        }
        if let payer = query.payer, !payer.isEmpty {
            // Only this account's payers: billingd would refuse another's as not found.
            if payers.contains(where: { $0.id == payer }) {
                list.payerId = payer
            } else {
                problems.append("Unknown payer filter.")
            }
        }
        var range = BillingV1.TimeRange()
        if let from = query.from, !from.isEmpty {
            if let day = Self.dayStart(from) {
                range.fromUnixMs = day
            } else {
                problems.append("“From” must be a date like 2026-01-31.")
            }
        }
        if let to = query.to, !to.isEmpty {
            if let day = Self.dayStart(to) {
                range.toUnixMs = day + 86_400_000
            } else {
                problems.append("“To” must be a date like 2026-01-31.")
            }
        }
        if range.fromUnixMs != 0 || range.toUnixMs != 0 { list.created = range }
        var pageRequest = BillingV1.PageRequest()
        pageRequest.pageSize = UInt32(configuration.historyPageSize)
        if let token = query.page, !token.isEmpty {
            if token.utf8.count <= 512 {
                pageRequest.pageToken = token
            } else {
                problems.append("That page link is not valid.")
            }
        }
        list.page = pageRequest

        var payments: [BillingV1.Payment] = []
        var nextPage = ""
        if problems.isEmpty {
            do {
                let listed = try await billingd.balance.listPayments(list, options: billingd.options)
                payments = listed.payments
                nextPage = listed.nextPageToken
            } catch {
                let problem = Problem(error)
                guard problem.isInputRefused else { throw problem }
                problems.append(problem.message)
            }
        }
        let notes = await notifications(context.account)

        // The payment just made, or the one the person comes back from paying.
        let shown = query.payment ?? context.visit.session.awaitedPaymentID
        let rows = payments.map { payment -> String in
            let status = Display.status(payment.status)
            let payer = payers.first { $0.id == payment.payerId }.map(\.displayName) ?? payment.payerId
            var details = ""
            var detailsClass = ""
            if let note = notes[payment.id] {
                details = "\(note.title): \(note.body)"
                detailsClass = note.severity == .error ? "error" : ""
            } else if !payment.failureReason.isEmpty {
                details = payment.failureReason
                detailsClass = "error"
            } else if payment.optionKind == .invoice && payment.status == .new {
                details = "Waiting for the bank transfer for invoice \(payment.invoiceNumber)."
            }
            var invoiceLinks = ""
            if payment.optionKind == .invoice, Self.isID(payment.id) {
                let file = payment.id.urlQueryEscaped
                invoiceLinks =
                    " <span class=\"invoice-links\"><a href=\"/invoices/\(file).pdf\">Invoice (PDF)</a> · <a href=\"/invoices/\(file).html\" target=\"_blank\" rel=\"noopener\">print</a></span>"
            }
            let highlighted = payment.id == shown ? " class=\"highlight\" aria-current=\"true\"" : ""
            return """
                <tr id="payment-\(HTML.escape(payment.id))" data-status="\(status.name)" data-rendered-status="\(status.name)"\(highlighted)>
                <td>\(Display.time(payment.createdAtUnixMs))</td>
                <td><code>\(HTML.escape(payment.id))</code></td>
                <td>\(Display.purpose(payment.purpose))</td>
                <td>\(HTML.escape(payer))</td>
                <td>\(HTML.escape(Display.method(payment)))</td>
                <td class="amount">\(HTML.escape(Display.money(payment.amount)))</td>
                <td class="status status-\(status.name)" data-status>\(status.text)</td>
                <td><span data-details class="\(detailsClass)">\(HTML.escape(details))</span>\(invoiceLinks)</td>
                </tr>
                """
        }.joined(separator: "\n")

        func selectOptions(_ pairs: [(String, String)], _ current: String?) -> String {
            pairs.map { value, label in
                "<option value=\"\(HTML.escape(value))\"\((current ?? "") == value ? " selected" : "")>\(HTML.escape(label))</option>"
            }.joined()
        }
        let payerFilter =
            payers.count > 1
            ? """
            <label for="filter-payer">Payer<br><select id="filter-payer" name="payer">\(selectOptions([("", "Any")] + payers.map { ($0.id, $0.displayName) }, query.payer))</select></label>
            """ : ""
        let filters = """
            <form method="get" action="/history" class="filters" aria-label="Filters">
            <label for="filter-status">Status<br><select id="filter-status" name="status">\(selectOptions([("", "Any"), ("new", "New"), ("paid", "Paid"), ("cancelled", "Cancelled")], query.status))</select></label>
            <label for="filter-purpose">Purpose<br><select id="filter-purpose" name="purpose">\(selectOptions([("", "Any"), ("top-up", "Top-up"), ("renewal", "Renewal"), ("migration", "Migration")], query.purpose))</select></label>
            \(payerFilter)
            <label for="filter-from">From<br><input type="date" id="filter-from" name="from" value="\(HTML.escape((query.from ?? "").prefix(10)))"></label>
            <label for="filter-to">To<br><input type="date" id="filter-to" name="to" value="\(HTML.escape((query.to ?? "").prefix(10)))"></label>
            <button type="submit" class="secondary">Filter</button>
            <a href="/history">Clear</a>
            </form>
            """
        var keep: [(String, String)] = []
        for (name, value) in [
            ("status", query.status), ("purpose", query.purpose), ("payer", query.payer), ("from", query.from),
            ("to", query.to),
        ] {
            if let value, !value.isEmpty { keep.append((name, value)) }
        }
        func link(page: String?) -> String {
            let pairs = keep + (page.map { [("page", $0)] } ?? [])
            return "/history"
                + (pairs.isEmpty ? "" : "?" + pairs.map { "\($0.0)=\($0.1.urlQueryEscaped)" }.joined(separator: "&"))
        }
        var paging: [String] = []
        if !(query.page ?? "").isEmpty { paging.append("<a href=\"\(HTML.escape(link(page: nil)))\">First page</a>") }
        if !nextPage.isEmpty {
            paging.append("<a href=\"\(HTML.escape(link(page: nextPage)))\" id=\"next-page\">Next page</a>")
        }
        let table =
            payments.isEmpty
            ? "<p id=\"no-payments\">No payments\(keep.isEmpty ? " yet" : " match these filters").</p>"
            : """
            <table id="payments">
            <caption class="hint">Newest first; times in UTC.</caption>
            <thead><tr><th scope="col">Created</th><th scope="col">Payment</th><th scope="col">Purpose</th><th scope="col">Payer</th><th scope="col">Method</th><th scope="col">Amount</th><th scope="col">Status</th><th scope="col">Details</th></tr></thead>
            <tbody>
            \(rows)
            </tbody></table>
            """
        let body = """
            <div id="history" data-live-url="/history/events?account=\(HTML.escape(context.account.urlQueryEscaped))" data-after="\(balance.asOfSequence)" data-live="off">
            \(HTML.alert(problems.isEmpty ? nil : problems.joined(separator: " ")))
            \(filters)
            <p class="live" id="live-state" aria-live="polite">Reload the page to see new statuses.</p>
            <p id="new-payments" hidden>There are new payments: <a href="\(HTML.escape(link(page: nil)))">reload</a> to see them.</p>
            \(table)
            <div class="paging">\(paging.joined())</div>
            </div>
            """
        return await page(
            context,
            title: "Payment history",
            tab: .history,
            body: body,
            status: problems.isEmpty ? .ok : .badRequest,
            balance: Display.money(balance.balance)
        )
    }

    /// The account's latest notifications by payment (the newest per payment;
    /// an error before any other).
    private func notifications(_ account: String) async -> [String: BillingV1.Notification] {
        var request = BillingV1.ListNotificationsRequest()
        request.accountId = account
        var paging = BillingV1.PageRequest()
        paging.pageSize = 200
        request.page = paging
        let listed =
            (try? await billingd.balance.listNotifications(request, options: billingd.options))?.notifications ?? []
        var byPayment: [String: BillingV1.Notification] = [:]
        for note in listed where !note.paymentId.isEmpty {
            if let kept = byPayment[note.paymentId], kept.severity == .error || note.severity != .error { continue }
            byPayment[note.paymentId] = note
        }
        return byPayment
    }

    /// Midnight UTC of "YYYY-MM-DD", in unix milliseconds; nil for anything else.
    static func dayStart(_ text: String) -> Int64? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard text.utf8.count == 10, parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
            (1970...9999).contains(year), (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let components = DateComponents(year: year, month: month, day: day)
        guard let date = calendar.date(from: components),
            calendar.component(.day, from: date) == day
        else { return nil }
        return Int64(date.timeIntervalSince1970) * 1000
    }

    // MARK: Live statuses

    /// What the page's script receives, as JSON in the SSE `data` line.
    private struct PaymentUpdate: Encodable {
        let id: String
        let status: String
        let statusText: String
        let failure: String
        /// A payment new to the account (not on the page yet).
        let created: Bool
    }

    private struct NotificationUpdate: Encodable {
        let payment: String
        let severity: String
        let title: String
        let body: String
    }

    private struct BalanceUpdate: Encodable {
        let balance: String
    }

    /// `GET /history/events`: the signed-in account's events from billingd
    /// as Server-Sent Events, after `Last-Event-ID` (a reconnect) or `after`.
    ///
    /// The response ends, and the browser reconnects after `retry` and
    /// resumes from its last event, whenever the stream cannot go on: billingd's
    /// watch ended (a restart), the session signed out or expired, the same
    /// session opened more live pages than it may (its oldest ends), the
    /// browser fell `maxPendingMessages` behind, or the panel shuts down. A
    /// comment every `liveKeepAliveSeconds` keeps proxies from closing an
    /// idle stream and finds a browser that left.
    func liveEvents(_ request: Request) -> Response {
        // The page names the account it shows: a page left open while the
        // browser signed in as another account must not show that one's events.
        guard let visit = visit(request), let account = visit.accountID,
            request.uri.queryParameters["account"].map({ $0 == account }) ?? true
        else {
            return Response(status: .unauthorized)
        }
        let after =
            request.headers[.lastEventID].flatMap { UInt64($0.prefix(20)) }
            ?? request.uri.queryParameters["after"].flatMap { UInt64($0.prefix(20)) } ?? 0
        let sessionID = visit.session.id
        let (messages, continuation) = AsyncStream.makeStream(
            of: String.self,
            bufferingPolicy: .bufferingOldest(Self.maxPendingMessages)
        )
        guard let stream = sessions.startLiveStream(sessionID, end: { continuation.finish() }) else {
            var headers = HTTPFields()
            headers[.retryAfter] = "30"
            return Response(status: .tooManyRequests, headers: headers)
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream; charset=utf-8"
        headers[.cacheControl] = "no-store"
        let watches = billingd.watches
        let sessions = sessions
        let keepAlive = Duration.milliseconds(Int64(configuration.liveKeepAliveSeconds * 1000))
        return Response(
            status: .ok,
            headers: headers,
            body: ResponseBody { writer in
                defer { sessions.endLiveStream(sessionID, stream: stream) }
                try await writer.write(ByteBuffer(string: "retry: 3000\n\n"))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        defer { continuation.finish() }
                        var watch = BillingV1.WatchPaymentsRequest()
                        watch.accountId = account
                        watch.afterSequence = after
                        do {
                            for try await event in try await watches.watchPayments(watch) {
                                guard let message = Self.message(event) else { continue }
                                if case .dropped = continuation.yield(message) { return }
                            }
                        } catch {
                            // billingd's watch ended (a restart, a shutdown): so does this.
                        }
                    }
                    group.addTask {
                        while !Task.isCancelled {
                            try await Task.sleep(for: keepAlive)
                            continuation.yield(": keep-alive\n\n")
                        }
                    }
                    group.addTask {
                        // The panel stops: end the stream so the stop does not wait for the browser.
                        try? await gracefulShutdown()
                        continuation.finish()
                    }
                    defer { group.cancelAll() }
                    for await message in messages {
                        guard sessions.holds(sessionID, account: account) else { break }
                        try await writer.write(ByteBuffer(string: message))
                    }
                }
                try await writer.finish(nil)
            }
        )
    }

    /// At most this many messages wait for a slow browser; past it the
    /// stream ends and the browser resumes from its last event (nothing is
    /// lost, memory is bounded).
    private static let maxPendingMessages = 1024

    private static func message(_ event: BillingV1.PaymentEvent) -> String? {
        let encoder = JSONEncoder()
        func sse(_ name: String, _ value: some Encodable) -> String? {
            guard let data = try? encoder.encode(value) else { return nil }
            return "id: \(event.sequence)\nevent: \(name)\ndata: \(String(decoding: data, as: UTF8.self))\n\n"
        }
        switch event.event {
        case .paymentStatusChanged(let change)?:
            guard let payment = change.payment else { return nil }
            let status = Display.status(payment.status)
            return sse(
                "payment",
                PaymentUpdate(
                    id: payment.id,
                    status: status.name,
                    statusText: status.text,
                    failure: payment.failureReason,
                    created: change.previousStatus == .unspecified
                )
            )
        case .notification(let note)?:
            return sse(
                "notification",
                NotificationUpdate(
                    payment: note.paymentId,
                    severity: note.severity == .error ? "error" : "info",
                    title: note.title,
                    body: note.body
                )
            )
        case .balanceChanged(let change)?:
            return sse("balance", BalanceUpdate(balance: Display.money(change.balance)))
        default:
            // Still an id, so a reconnect resumes after it.
            return "id: \(event.sequence)\n\n"
        }
    }
}
