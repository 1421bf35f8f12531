internal import BillingAPI
internal import BillingCore
internal import BillingMessages
internal import Foundation
internal import Hummingbird

/// The top-up page, as the seed lays it out: amount (presets and limits),
/// payer, payment method, "save this method"; a payment-system payment goes
/// to the system's page, everything else to the payment history.
extension Panel {
    struct TopUpQuery: Decodable {
        var payer: String?
        var amount: String?
    }

    struct TopUpForm: PanelForm {
        var csrf: String?
        var payer: String?
        var amount: String?
        var option: String?
        var saveMethod: String?
        var request: String?
        /// "Show this payer's methods" (without the script): a new page, no payment.
        var show: String?
        /// A preset pressed without the script: a new page with that amount.
        var preset: String?
    }

    func topUpPage(_ context: SignedIn, _ request: Request) async throws -> Response {
        let query =
            (try? URLEncodedFormDecoder().decode(TopUpQuery.self, from: request.uri.query ?? "")) ?? TopUpQuery()
        let choices = try await choices(account: context.account, payerID: query.payer)
        return await topUpForm(context, choices, amount: query.amount.map { String($0.prefix(32)) } ?? "")
    }

    private func topUpForm(
        _ context: SignedIn,
        _ choices: PaymentChoices,
        amount: String,
        option: String? = nil,
        saveMethod: Bool = false,
        problem: FieldProblem? = nil,
        message: String? = nil,
        requestToken: String = Sessions.token(),
        status: HTTPResponse.Status = .ok
    ) async -> Response {
        // Presets are buttons of the form: the script fills the amount in;
        // without it the form comes back with that amount (nothing is paid).
        let presets = choices.options.presets.map { preset -> String in
            let money = Money(minorUnits: preset.amountMinorUnits, choices.currency)
            let typed = try? Money(parsing: amount, choices.currency)
            let pressed = typed == money ? "true" : "false"
            return """
                <button type="submit" name="preset" value="\(money.formatted)" data-amount="\(money.formatted)" aria-pressed="\(pressed)" class="secondary">\(HTML.escape(money.description))</button>
                """
        }.joined()
        let amountError = problem?.field == "amount" ? problem?.message : nil
        let describedBy = amountError == nil ? "amount-hint" : "amount-hint amount-error"
        var body = ""
        if choices.payer == nil {
            body += choices.payerField()
        } else {
            body += """
                \(HTML.alert(message))
                <form method="post" action="/topup" novalidate>
                \(HTML.defaultSubmit("Top up"))
                <input type="hidden" name="csrf" value="\(HTML.escape(context.visit.csrfToken))">
                <input type="hidden" name="request" value="\(requestToken)">
                <fieldset><legend>Amount</legend>
                <div class="presets" aria-label="Preset amounts">\(presets)</div>
                <label for="amount">Top-up amount (\(HTML.escape(choices.currency.code)))</label>
                <input type="text" id="amount" name="amount" inputmode="decimal" autocomplete="off" maxlength="32" value="\(HTML.escape(amount))" aria-describedby="\(describedBy)"\(amountError == nil ? "" : " aria-invalid=\"true\"")>
                <p class="hint" id="amount-hint">From \(HTML.escape(choices.minimum.description)) to \(HTML.escape(choices.maximum.description)).</p>
                \(HTML.fieldError("amount", amountError))
                </fieldset>
                \(choices.payerField())
                \(choices.optionFields(selected: option, balance: nil, saveBox: true, saveChecked: saveMethod, error: problem?.field == "option" ? problem?.message : nil))
                <p><button type="submit" id="submit">Top up</button></p>
                </form>
                """
        }
        return await page(context, title: "Top up your balance", tab: .topUp, body: body, status: status)
    }

    func topUp(_ context: SignedIn, _ request: Request) async throws -> Response {
        let form = try await self.form(TopUpForm.self, request, context.visit)
        let choices = try await choices(account: context.account, payerID: form.payer)
        let amountText = String((form.amount ?? "").prefix(32))
        let save = form.saveMethod == "on"
        func again(
            _ problem: FieldProblem?,
            message: String? = nil,
            token: String = Sessions.token(),
            status: HTTPResponse.Status = .badRequest
        ) async -> Response {
            await topUpForm(
                context,
                choices,
                amount: amountText,
                option: form.option,
                saveMethod: save,
                problem: problem,
                message: message,
                requestToken: token,
                status: status
            )
        }
        if form.show != nil {
            // Another payer's methods: a choice among the last payer's does not carry over.
            return await topUpForm(context, choices, amount: amountText, saveMethod: save)
        }
        if let preset = form.preset {
            let known = choices.options.presets.map {
                Money(minorUnits: $0.amountMinorUnits, choices.currency).formatted
            }
            return await topUpForm(
                context,
                choices,
                amount: known.contains(preset) ? preset : amountText,
                option: form.option,
                saveMethod: save
            )
        }
        guard let payer = choices.payer?.payer, payer.id == form.payer else {
            return await again(nil, message: "Choose a payer of this account.")
        }
        let amount: Money
        let option: BillingV1.PaymentOption
        do {
            amount = try choices.amount(form.amount, option: form.option)
            option = try choices.option(
                form.option,
                saveMethod: save,
                allowBalance: false,
                returnURL: returnURL(request)
            )
        } catch let problem as FieldProblem {
            return await again(problem)
        }
        guard Self.isRequestToken(form.request), let key = form.request else {
            return await again(nil, message: "This form is out of date; check it and press Top up again.")
        }
        var create = BillingV1.CreateTopUpRequest()
        create.accountId = context.account
        create.payerId = payer.id
        create.amount = BillingV1.Money(amount)
        create.option = option
        let response: BillingV1.CreateTopUpResponse
        do {
            response = try await billingd.balance.createTopUp(create, options: billingd.once(key))
        } catch {
            let problem = Problem(error)
            if problem.isInputRefused && problem.message.contains("amount") {
                return await again(FieldProblem(field: "amount", message: problem.message))
            }
            // No answer: the same key again can only find the first attempt.
            return await again(
                nil,
                message: problem.message,
                token: problem.status == 503 ? key : Sessions.token(),
                status: HTTPResponse.Status(code: problem.status)
            )
        }
        let paymentID = response.payment?.id ?? ""
        logger.info("top-up", metadata: ["account": "\(context.account)", "payment": "\(paymentID)"])
        if let away = toPaymentSystem(response.redirectUrl, payment: paymentID, context: context) { return away }
        return HTML.redirect("/history?payment=\(paymentID.urlQueryEscaped)", headers: context.visit.setCookie)
    }
}

extension BillingV1.Money {
    init(_ money: Money) {
        self.init()
        amountMinorUnits = money.amountMinorUnits
        currency = money.currency.code
    }
}

extension String {
    /// Percent-encoded for a query value: only RFC 3986's unreserved
    /// characters stay as they are, so nothing in it can change the query.
    var urlQueryEscaped: String {
        addingPercentEncoding(withAllowedCharacters: .panelUnreserved) ?? ""
    }
}

extension CharacterSet {
    static let panelUnreserved = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    )
}
