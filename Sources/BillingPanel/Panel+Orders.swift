internal import BillingAPI
internal import BillingCore
internal import BillingMessages
internal import Hummingbird

/// The seed's neighbours of the top-up: renewing services, and paying for
/// the server of an ordered migration. Both pay from the balance or with the
/// same payer and method choice as a top-up.
extension Panel {
    // MARK: Renewals

    struct RenewalsQuery: Decodable {
        var periods: [String: String]?
        var payer: String?
        var order: String?
    }

    struct RenewForm: PanelForm {
        var csrf: String?
        var request: String?
        var payer: String?
        var periods: [String: String]?
        var expected: String?
        /// The payment the quote showed, in minor units, and the option it was quoted for.
        var toPay: String?
        var quotedOption: String?
        var option: String?
        var saveMethod: String?
        /// "Show this payer's methods" (without the script): the quote again, no payment.
        var show: String?
    }

    /// The renewal items a form asks for: services with 1 to 120 periods.
    static func items(_ periods: [String: String]?) throws -> [BillingV1.RenewalItem] {
        var items: [BillingV1.RenewalItem] = []
        for (service, text) in (periods ?? [:]).sorted(by: { $0.key < $1.key }) {
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty, trimmed != "0" else { continue }
            guard Self.isID(service), let count = UInt32(trimmed.prefix(4)), (1...120).contains(count) else {
                throw FieldProblem(field: "periods", message: "Renew each service for 0 to 120 periods.")
            }
            var item = BillingV1.RenewalItem()
            item.serviceId = service
            item.periods = count
            items.append(item)
        }
        guard items.count <= 100 else {
            throw FieldProblem(field: "periods", message: "Renew at most 100 services at once.")
        }
        return items
    }

    func renewalsPage(_ context: SignedIn, _ request: Request) async throws -> Response {
        let query =
            (try? URLEncodedFormDecoder().decode(RenewalsQuery.self, from: request.uri.query ?? "")) ?? RenewalsQuery()
        return try await renewals(context, periods: query.periods ?? [:], payerID: query.payer, orderID: query.order)
    }

    func renewals(
        _ context: SignedIn,
        periods: [String: String],
        payerID: String?,
        orderID: String? = nil,
        option: String? = nil,
        message: String? = nil,
        status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        var body = HTML.alert(message)
        if let orderID, Self.isID(orderID) {
            var get = BillingV1.GetRenewalOrderRequest()
            get.orderId = orderID
            if let order = try? await billingd.renewal.getRenewalOrder(get, options: billingd.options),
                order.accountId == context.account
            {
                let done = order.status == .completed
                let lines = order.lines.map {
                    "<li>\(HTML.escape($0.serviceId)): \($0.periods) period(s), \(HTML.escape(Display.money($0.amount))), now until \(Display.time($0.newExpiresAtUnixMs))</li>"
                }.joined()
                body += """
                    <section id="renewal-result"><p class="\(done ? "ok" : "")">Renewal order <code>\(HTML.escape(order.id))</code>: \(done ? "completed" : order.status == .cancelled ? "cancelled" : "waiting for its payment") (\(HTML.escape(Display.money(order.total)))).</p><ul>\(lines)</ul></section>
                    """
            }
        }
        var list = BillingV1.ListRenewableServicesRequest()
        list.accountId = context.account
        var paging = BillingV1.PageRequest()
        paging.pageSize = 200
        list.page = paging
        let services: [BillingV1.RenewableService]
        do {
            services = try await billingd.renewal.listRenewableServices(list, options: billingd.options).services
        } catch {
            throw Problem(error)
        }
        guard !services.isEmpty else {
            body += "<p id=\"no-services\">This account has no services to renew.</p>"
            return await page(context, title: "Renew services", tab: .renewals, body: body, status: status)
        }
        let rows = services.enumerated().map { index, service in
            let value = periods[service.id] ?? ""
            return """
                <tr><td>\(HTML.escape(service.displayName))<br><code class="hint">\(HTML.escape(service.id))</code></td>
                <td class="amount">\(HTML.escape(Display.money(service.pricePerPeriod)))</td>
                <td>\(service.periodDays) days</td>
                <td>\(Display.time(service.expiresAtUnixMs))</td>
                <td><label for="periods-\(index)" class="visually-hidden">Periods of \(HTML.escape(service.displayName))</label>
                <input type="number" id="periods-\(index)" name="periods[\(HTML.escape(service.id))]" min="0" max="120" value="\(HTML.escape(value.prefix(4)))" inputmode="numeric"></td></tr>
                """
        }.joined(separator: "\n")
        body += """
            <form method="get" action="/renewals" id="renewal-services">
            \(payerID.map { "<input type=\"hidden\" name=\"payer\" value=\"\(HTML.escape($0))\">" } ?? "")
            <table><caption class="hint">Soonest expiry first. Choose how many periods to renew each service for (0: not renewed).</caption>
            <thead><tr><th scope="col">Service</th><th scope="col">Price per period</th><th scope="col">Period</th><th scope="col">Expires</th><th scope="col">Renew for (periods)</th></tr></thead>
            <tbody>\(rows)</tbody></table>
            <p><button type="submit" class="secondary" id="quote">Get quote</button></p>
            </form>
            """
        var payersRequest = BillingV1.ListPayersRequest()
        payersRequest.accountId = context.account
        let payers = (try? await billingd.methods.listPayers(payersRequest, options: billingd.options).payers) ?? []
        let automatic = autoRenewalSection(context, services: services, payers: payers)
        let items: [BillingV1.RenewalItem]
        do {
            items = try Self.items(periods)
        } catch let problem as FieldProblem {
            // Shown once: a refused form already says it at the top.
            if message == nil { body += HTML.alert(problem.message) }
            return await page(context, title: "Renew services", tab: .renewals, body: body, status: .badRequest)
        }
        if !items.isEmpty {
            var quote = BillingV1.QuoteRenewalRequest()
            quote.accountId = context.account
            quote.items = items
            do {
                let choices = try await choices(account: context.account, payerID: payerID)
                // Quoted for the way chosen last (a refused Renew), so a payment
                // system's minimum shows before the person presses Renew again.
                func quoting(_ chosen: String?) async throws -> BillingV1.QuoteRenewalResponse {
                    quote.option = chosen.flatMap {
                        try? choices.option($0, saveMethod: false, allowBalance: true, returnURL: "")
                    }
                    return try await billingd.renewal.quoteRenewal(quote, options: billingd.options)
                }
                var quoted = try await quoting(option)
                var selected = option
                if option == nil, quoted.toPay?.amountMinorUnits ?? 0 > 0, let preselected = choices.preselected {
                    // The balance falls short: quoted for the method shown selected, its minimum included.
                    selected = preselected
                    quoted = try await quoting(preselected)
                }
                let toPay = quoted.toPay?.amountMinorUnits ?? 0
                var balanceRequest = BillingV1.GetBalanceRequest()
                balanceRequest.accountId = context.account
                let balance = try? await billingd.balance.getBalance(balanceRequest, options: billingd.options)
                let names = Dictionary(services.map { ($0.id, $0.displayName) }) { first, _ in first }
                let lines = quoted.lines.map {
                    "<tr><td>\(HTML.escape(names[$0.serviceId] ?? $0.serviceId))</td><td>\($0.periods)</td><td class=\"amount\">\(HTML.escape(Display.money($0.amount)))</td><td>\(Display.time($0.newExpiresAtUnixMs))</td></tr>"
                }.joined()
                let carried = items.map { ("periods[\($0.serviceId)]", String($0.periods)) }
                let hidden = carried.map {
                    "<input type=\"hidden\" name=\"\(HTML.escape($0.0))\" value=\"\($0.1)\">"
                }.joined()
                body += """
                    <section id="quote-result"><h2>Quote</h2>
                    <table><thead><tr><th scope="col">Service</th><th scope="col">Periods</th><th scope="col">Amount</th><th scope="col">New expiry</th></tr></thead>
                    <tbody>\(lines)</tbody></table>
                    <p>Total: <strong id="quote-total">\(HTML.escape(Display.money(quoted.total)))</strong>.
                    From your balance: <strong id="quote-from-balance">\(HTML.escape(Display.money(quoted.fromBalance)))</strong>.
                    To pay: <strong id="quote-to-pay">\(HTML.escape(Display.money(quoted.toPay)))</strong>.</p>
                    \(quoted.note.isEmpty ? "" : "<p class=\"hint\" id=\"quote-note\">\(HTML.escape(quoted.note)).</p>")
                    <form method="post" action="/renewals">
                    \(HTML.defaultSubmit("Renew"))
                    <input type="hidden" name="csrf" value="\(HTML.escape(context.visit.csrfToken))">
                    <input type="hidden" name="request" value="\(Sessions.token())">
                    <input type="hidden" name="expected" value="\(quoted.total?.amountMinorUnits ?? 0)">
                    <input type="hidden" name="toPay" value="\(toPay)">
                    <input type="hidden" name="quotedOption" value="\(HTML.escape(selected ?? ""))">
                    \(hidden)
                    \(choices.payerField())
                    \(choices.optionFields(selected: selected ?? (toPay == 0 ? "balance" : nil), balance: balance.map(Display.available) ?? "", saveBox: true, saveChecked: false, error: nil))
                    <p><button type="submit" id="renew">\(toPay == 0 ? "Renew for \(HTML.escape(Display.money(quoted.total)))" : "Renew and pay \(HTML.escape(Display.money(quoted.toPay)))")</button></p>
                    </form></section>
                    """
            } catch {
                // Shown once: a refused Renew already says it at the top.
                let problem = error as? Problem ?? Problem(error)
                if problem.message != message { body += HTML.alert(problem.message) }
            }
        }
        body += automatic
        return await page(context, title: "Renew services", tab: .renewals, body: body, status: status)
    }

    func renew(_ context: SignedIn, _ request: Request) async throws -> Response {
        let form = try await self.form(RenewForm.self, request, context.visit)
        let periods = form.periods ?? [:]
        func again(_ message: String) async throws -> Response {
            try await renewals(
                context,
                periods: periods,
                payerID: form.payer,
                option: form.option,
                message: message,
                status: .badRequest
            )
        }
        let items: [BillingV1.RenewalItem]
        do {
            items = try Self.items(periods)
        } catch let problem as FieldProblem {
            return try await again(problem.message)
        }
        guard !items.isEmpty else { return try await again("Choose at least one service to renew.") }
        if form.show != nil {
            return try await renewals(context, periods: periods, payerID: form.payer)
        }
        let paying: (option: BillingV1.PaymentOption, payerID: String, currency: Currency)
        do {
            paying = try await orderPayment(
                context,
                payerID: form.payer,
                option: form.option,
                save: form.saveMethod,
                request
            )
        } catch let problem as FieldProblem {
            return try await again(problem.message)
        }
        guard Self.isRequestToken(form.request), let key = form.request,
            let expected = form.expected.flatMap({ Int64($0.prefix(20)) }),
            let toPay = form.toPay.flatMap({ Int64($0.prefix(20)) })
        else { return try await again("This form is out of date; check the quote and press Renew again.") }
        var renew = BillingV1.RenewRequest()
        renew.accountId = context.account
        renew.payerId = paying.payerID
        renew.items = items
        renew.option = paying.option
        renew.expectedTotal = BillingV1.Money(Money(minorUnits: expected, paying.currency))
        switch paying.option.option {
        case .balance?:
            break  // The balance's own rule applies (insufficient funds), not the quote's.
        default:
            if form.option != form.quotedOption {
                // Another method than the quote's: its minimum may make the payment another amount.
                var quote = BillingV1.QuoteRenewalRequest()
                quote.accountId = context.account
                quote.items = items
                quote.option = paying.option
                let fresh = try await billingd.renewal.quoteRenewal(quote, options: billingd.options)
                guard fresh.toPay?.amountMinorUnits == toPay else {
                    return try await again(
                        "The amount to pay depends on the payment method: here is the quote for the one you chose. Check it and press Renew again."
                    )
                }
            }
            renew.expectedToPay = BillingV1.Money(Money(minorUnits: toPay, paying.currency))
        }
        let response: BillingV1.RenewResponse
        do {
            response = try await billingd.renewal.renew(renew, options: billingd.once(key))
        } catch {
            return try await again(Problem(error).message)
        }
        let orderID = response.order?.id ?? ""
        logger.info("renewal", metadata: ["account": "\(context.account)", "order": "\(orderID)"])
        if let payment = response.payment,
            let away = toPaymentSystem(response.redirectUrl, payment: payment.id, context: context)
        {
            return away
        }
        return HTML.redirect("/renewals?order=\(orderID.urlQueryEscaped)", headers: context.visit.setCookie)
    }

    /// How a renewal or a migration is paid: from the balance (no payer),
    /// or with an option of the payer the form shows (the payer shown is the
    /// payer charged). Throws `FieldProblem` for the form to show.
    private func orderPayment(
        _ context: SignedIn,
        payerID: String?,
        option: String?,
        save: String?,
        _ request: Request
    ) async throws -> (option: BillingV1.PaymentOption, payerID: String, currency: Currency) {
        let choices = try await choices(account: context.account, payerID: payerID)
        let payer = choices.payer?.payer?.id ?? ""
        guard option == "balance" || payer == payerID else {
            throw FieldProblem(field: "payer", message: "Choose a payer of this account.")
        }
        let chosen = try choices.option(
            option,
            saveMethod: save == "on",
            allowBalance: true,
            returnURL: returnURL(request)
        )
        if case .balance = chosen.option { return (chosen, "", choices.currency) }
        return (chosen, payer, choices.currency)
    }

    // MARK: Migration payment

    struct MigrationQuery: Decodable {
        var order: String?
        var payer: String?
    }

    struct MigrationForm: PanelForm {
        var csrf: String?
        var request: String?
        var order: String?
        var payer: String?
        var option: String?
        var saveMethod: String?
        /// "Show this payer's methods" (without the script): the order again, no payment.
        var show: String?
    }

    func migrationPage(_ context: SignedIn, _ request: Request) async throws -> Response {
        let query =
            (try? URLEncodedFormDecoder().decode(MigrationQuery.self, from: request.uri.query ?? ""))
            ?? MigrationQuery()
        return try await migration(context, orderID: query.order, payerID: query.payer)
    }

    private func migration(
        _ context: SignedIn,
        orderID: String?,
        payerID: String?,
        option: String? = nil,
        message: String? = nil,
        status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        let opener = """
            <form method="get" action="/migration" id="open-order">
            <label for="order">Migration order id <span class="hint">(the migration service links here with it)</span></label>
            <input type="text" id="order" name="order" value="\(HTML.escape((orderID ?? "").prefix(64)))" maxlength="64" autocomplete="off">
            <button type="submit" class="secondary">Open</button>
            </form>
            """
        guard let orderID, !orderID.isEmpty else {
            return await page(
                context,
                title: "Pay for a migration",
                tab: .migration,
                body: HTML.alert(message) + opener,
                status: status
            )
        }
        var get = BillingV1.GetMigrationOrderRequest()
        get.orderId = orderID
        let order: BillingV1.MigrationOrder?
        if Self.isID(orderID) {
            do {
                order = try await billingd.migration.getMigrationOrder(get, options: billingd.options)
            } catch {
                let problem = Problem(error)
                guard problem.status == 404 else { throw problem }
                order = nil
            }
        } else {
            order = nil
        }
        // Another account's order reads exactly like no order at all.
        guard let order, order.accountId == context.account else {
            return await page(
                context,
                title: "Pay for a migration",
                tab: .migration,
                body: HTML.alert("There is no migration order \(orderID.prefix(64)) for this account.") + opener,
                status: .notFound
            )
        }
        var body = HTML.alert(message)
        let state: String
        switch order.status {
        case .paid: state = "<p class=\"ok\" id=\"order-state\">Paid on \(Display.time(order.paidAtUnixMs)).</p>"
        case .paymentPending:
            state =
                "<p id=\"order-state\">A payment for it is under way: see the <a href=\"/history?payment=\(HTML.escape(order.paymentId.urlQueryEscaped))\">payment history</a>.</p>"
        default: state = "<p id=\"order-state\">Waiting for payment.</p>"
        }
        body += """
            <section id="migration-order">
            <dl><dt>Order</dt><dd><code>\(HTML.escape(order.id))</code></dd>
            <dt>Migration</dt><dd>\(HTML.escape(order.description))</dd>
            <dt>Server price</dt><dd id="server-price">\(HTML.escape(Display.money(order.serverPrice)))</dd>
            <dt>Ordered</dt><dd>\(Display.time(order.createdAtUnixMs))</dd></dl>
            \(state)
            </section>
            """
        if order.status == .awaitingPayment {
            let choices = try await choices(account: context.account, payerID: payerID)
            var balanceRequest = BillingV1.GetBalanceRequest()
            balanceRequest.accountId = context.account
            let balance = try? await billingd.balance.getBalance(balanceRequest, options: billingd.options)
            body += """
                <form method="post" action="/migration/pay">
                \(HTML.defaultSubmit("Pay"))
                <input type="hidden" name="csrf" value="\(HTML.escape(context.visit.csrfToken))">
                <input type="hidden" name="request" value="\(Sessions.token())">
                <input type="hidden" name="order" value="\(HTML.escape(order.id))">
                \(choices.payerField())
                \(choices.optionFields(selected: option ?? "balance", balance: balance.map(Display.available) ?? "", saveBox: true, saveChecked: false, error: nil))
                <p><button type="submit" id="pay-migration">Pay \(HTML.escape(Display.money(order.serverPrice)))</button></p>
                </form>
                """
        }
        return await page(context, title: "Pay for a migration", tab: .migration, body: body + opener, status: status)
    }

    func payMigration(_ context: SignedIn, _ request: Request) async throws -> Response {
        let form = try await self.form(MigrationForm.self, request, context.visit)
        guard let orderID = form.order, Self.isID(orderID) else {
            return try await migration(
                context,
                orderID: nil,
                payerID: nil,
                message: "Open a migration order first.",
                status: .badRequest
            )
        }
        func again(_ message: String) async throws -> Response {
            try await migration(
                context,
                orderID: orderID,
                payerID: form.payer,
                option: form.option,
                message: message,
                status: .badRequest
            )
        }
        // The order must be this account's before anything is paid for it.
        var get = BillingV1.GetMigrationOrderRequest()
        get.orderId = orderID
        guard let order = try? await billingd.migration.getMigrationOrder(get, options: billingd.options),
            order.accountId == context.account
        else { return try await again("There is no migration order \(orderID) for this account.") }
        if form.show != nil {
            return try await migration(context, orderID: orderID, payerID: form.payer)
        }
        let paying: (option: BillingV1.PaymentOption, payerID: String, currency: Currency)
        do {
            paying = try await orderPayment(
                context,
                payerID: form.payer,
                option: form.option,
                save: form.saveMethod,
                request
            )
        } catch let problem as FieldProblem {
            return try await again(problem.message)
        }
        guard Self.isRequestToken(form.request), let key = form.request else {
            return try await again("This form is out of date; press Pay again.")
        }
        var pay = BillingV1.PayMigrationOrderRequest()
        pay.orderId = order.id
        pay.payerId = paying.payerID
        pay.option = paying.option
        let response: BillingV1.PayMigrationOrderResponse
        do {
            response = try await billingd.migration.payMigrationOrder(pay, options: billingd.once(key))
        } catch {
            return try await again(Problem(error).message)
        }
        logger.info("migration payment", metadata: ["account": "\(context.account)", "order": "\(order.id)"])
        if let payment = response.payment,
            let away = toPaymentSystem(response.redirectUrl, payment: payment.id, context: context)
        {
            return away
        }
        return HTML.redirect("/migration?order=\(order.id.urlQueryEscaped)", headers: context.visit.setCookie)
    }
}
