internal import BillingAPI
internal import BillingCore
internal import BillingMessages
internal import Hummingbird

/// The seed's "payer, then payment method" choice, shared by the top-up,
/// renewal and migration pages: the account's payers, the selected payer's
/// saved methods (its default pre-selected), the invoice and each payment
/// system billingd enables, as billingd's GetTopUpOptions lists them.
struct PaymentChoices {
    let options: BillingV1.GetTopUpOptionsResponse
    /// nil when the account has no payer.
    let payer: BillingV1.PayerOptions?
    let currency: Currency

    var minimum: Money { Money(minorUnits: options.minAmount?.amountMinorUnits ?? 0, currency) }
    var maximum: Money { Money(minorUnits: options.maxAmount?.amountMinorUnits ?? 0, currency) }

    /// The form value of the option pre-selected: the payer's default method.
    var preselected: String? {
        guard let id = payer?.defaultMethodId, !id.isEmpty else { return nil }
        return "method:\(id)"
    }

    /// The payer picker, in two parts because forms do not nest: `form` is
    /// an empty GET form (with the page's other query fields, `carry`) to put
    /// outside the payment form, and `field` the labelled drop-down (or the
    /// one payer's name) that belongs to it through the `form` attribute, so
    /// it can sit between the amount and the methods as the seed orders them.
    /// Its button (or, with the script, a change) shows that payer's methods.
    func payerPicker(action: String, carry: [(name: String, value: String)]) -> (form: String, field: String) {
        let payers = options.payers.compactMap(\.payer)
        guard payers.count > 1, let selected = payer?.payer else {
            guard let only = payers.first else {
                return (
                    "",
                    "<p class=\"error\" id=\"no-payer\">This account has no payer yet, so nothing can be paid. Ask support to add one.</p>"
                )
            }
            return ("", "<p>Payer: <strong id=\"payer-name\">\(HTML.escape(Display.payer(only)))</strong></p>")
        }
        let choices = payers.map { payer in
            let chosen = payer.id == selected.id ? " selected" : ""
            return "<option value=\"\(HTML.escape(payer.id))\"\(chosen)>\(HTML.escape(Display.payer(payer)))</option>"
        }.joined()
        let hidden = carry.map {
            "<input type=\"hidden\" name=\"\(HTML.escape($0.name))\" value=\"\(HTML.escape($0.value))\">"
        }.joined()
        let form = "<form method=\"get\" action=\"\(action)\" id=\"payer-picker\">\(hidden)</form>"
        let field = """
            <fieldset><legend>Payer</legend>
            <label for="payer">The payment methods shown are this payer's</label>
            <select id="payer" name="payer" form="payer-picker" data-autosubmit>\(choices)</select>
            <button type="submit" form="payer-picker" class="secondary nojs">Show this payer's methods</button>
            </fieldset>
            """
        return (form, field)
    }

    /// The radio group of payment options; `balance` adds "from the balance"
    /// first (renewals and migrations). `saveBox` adds "save this method".
    func optionFields(selected: String?, balance: String?, saveBox: Bool, saveChecked: Bool, error: String?) -> String {
        var rows: [String] = []
        func radio(_ value: String, _ label: String, id: String, note: String = "") -> String {
            let checked = value == (selected ?? preselected) ? " checked" : ""
            let described = error == nil ? "" : " aria-describedby=\"option-error\""
            return """
                <label for="\(id)"><input type="radio" name="option" id="\(id)" value="\(HTML.escape(value))"\(checked)\(described) required> \(label)\(note)</label>
                """
        }
        if let balance {
            rows.append(
                radio(
                    "balance",
                    "From the balance",
                    id: "option-balance",
                    note: " <span class=\"hint\">(\(HTML.escape(balance)))</span>"
                )
            )
        }
        if options.invoiceAvailable {
            rows.append(
                radio(
                    "invoice",
                    "Invoice",
                    id: "option-invoice",
                    note: " <span class=\"hint\">(pay by bank transfer; credited when the transfer arrives)</span>"
                )
            )
        }
        for (index, method) in (payer?.methods ?? []).enumerated() {
            let isDefault = method.id == payer?.defaultMethodId ? " <span class=\"hint\">(default)</span>" : ""
            rows.append(
                radio(
                    "method:\(method.id)",
                    "\(HTML.escape(method.displayName)) · \(Display.system(method.system))",
                    id: "option-method-\(index)",
                    note: isDefault
                )
            )
        }
        for system in options.paymentSystems {
            let name = Display.system(system)
            var note = ""
            if let limits = options.systemLimits.first(where: { $0.system == system }) {
                note =
                    " <span class=\"hint\">(\(HTML.escape(Display.money(limits.minAmount))) to \(HTML.escape(Display.money(limits.maxAmount))))</span>"
            }
            rows.append(
                radio(
                    "system:\(Self.systemKey(system))",
                    "Pay with \(name)",
                    id: "option-system-\(Self.systemKey(system))",
                    note: note
                )
            )
        }
        let save =
            saveBox && !options.paymentSystems.isEmpty
            ? """
            <label for="save-method"><input type="checkbox" id="save-method" name="saveMethod" value="on"\(saveChecked ? " checked" : "")> Save this payment method for future payments <span class="hint">(payment systems only; it is checked every minute until confirmed)</span></label>
            """ : ""
        return """
            <fieldset><legend>Payment method</legend>
            \(rows.joined(separator: "\n"))
            \(save)
            \(HTML.fieldError("option", error))
            </fieldset>
            """
    }

    /// The chosen option as billingd takes it; `returnURL` for payment systems.
    func option(
        _ value: String?,
        saveMethod: Bool,
        allowBalance: Bool,
        returnURL: String
    ) throws
        -> BillingV1.PaymentOption
    {
        var option = BillingV1.PaymentOption()
        let value = value ?? ""
        if value == "balance" && allowBalance {
            option.option = .balance(BillingV1.BalanceOption())
        } else if value == "invoice" && options.invoiceAvailable {
            option.option = .invoice(BillingV1.InvoiceOption())
        } else if value.hasPrefix("method:"),
            let method = payer?.methods.first(where: { "method:\($0.id)" == value })
        {
            var saved = BillingV1.SavedMethodOption()
            saved.paymentMethodId = method.id
            option.option = .savedMethod(saved)
        } else if value.hasPrefix("system:"),
            let system = options.paymentSystems.first(where: { "system:\(Self.systemKey($0))" == value })
        {
            var chosen = BillingV1.PaymentSystemOption()
            chosen.system = system
            chosen.saveMethod = saveMethod
            chosen.returnUrl = returnURL
            option.option = .paymentSystem(chosen)
        } else {
            throw FieldProblem(
                field: "option",
                message: value.isEmpty ? "Choose a payment method." : "Choose one of the payment methods shown."
            )
        }
        return option
    }

    /// An amount as a person typed it, within the page's limits and, for a
    /// payment system, that system's.
    func amount(_ text: String?, option: String?) throws -> Money {
        let money: Money
        do {
            money = try Money(parsing: text ?? "", currency)
        } catch {
            throw FieldProblem(field: "amount", message: "Enter an amount like 100 or 100.50 (\(error.description)).")
        }
        guard money.amountMinorUnits >= minimum.amountMinorUnits, money.amountMinorUnits <= maximum.amountMinorUnits
        else {
            throw FieldProblem(field: "amount", message: "The amount must be from \(minimum) to \(maximum).")
        }
        if let option, option.hasPrefix("system:"),
            let limits = options.systemLimits.first(where: { "system:\(Self.systemKey($0.system))" == option }),
            let low = limits.minAmount, let high = limits.maxAmount,
            money.amountMinorUnits < low.amountMinorUnits || money.amountMinorUnits > high.amountMinorUnits
        {
            throw FieldProblem(
                field: "amount",
                message:
                    "\(Display.system(limits.system)) takes amounts from \(Display.money(low)) to \(Display.money(high))."
            )
        }
        return money
    }

    static func systemKey(_ system: BillingV1.PaymentSystem) -> String {
        switch system {
        case .stripe: "stripe"
        case .paypal: "paypal"
        case .sandbox: "sandbox"
        default: "unknown"
        }
    }
}

/// Input a form field refused; the page shows `message` beside that field.
struct FieldProblem: Error {
    let field: String
    let message: String
}

extension Panel {
    /// The account's payment choices with `payerID` selected (the first payer
    /// when it names none of the account's).
    func choices(account: String, payerID: String?) async throws -> PaymentChoices {
        var request = BillingV1.GetTopUpOptionsRequest()
        request.accountId = account
        let options: BillingV1.GetTopUpOptionsResponse
        do {
            options = try await billingd.balance.getTopUpOptions(request, options: billingd.options)
        } catch {
            throw Problem(error)
        }
        guard let code = options.minAmount?.currency, let currency = try? Currency(code: code) else {
            throw Problem(status: 502, "billingd sent no top-up limits.")
        }
        let payer = options.payers.first { $0.payer?.id == payerID } ?? options.payers.first
        return PaymentChoices(options: options, payer: payer, currency: currency)
    }

    /// 32 random bytes: the idempotency key of one form as rendered, so
    /// pressing its button twice makes one payment.
    static func isRequestToken(_ text: String?) -> Bool {
        guard let text else { return false }
        return text.utf8.count == 64
            && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    /// Sends the person to a payment system's page; only http(s) links.
    func toPaymentSystem(_ redirectURL: String, payment: String, context: SignedIn) -> Response? {
        guard !redirectURL.isEmpty else { return nil }
        guard redirectURL.hasPrefix("https://") || redirectURL.hasPrefix("http://") else { return nil }
        sessions.update(context.sessionID) { $0.awaitedPaymentID = payment }
        return HTML.redirect(redirectURL, headers: context.visit.setCookie)
    }
}
