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

    /// The payer field, inside the payment form: the payer shown is the
    /// payer charged. With several payers a drop-down; the script shows the
    /// chosen payer's methods at once, and without it the "Show this payer's
    /// methods" button sends the form back with `show` (nothing is paid) to
    /// get that payer's page, keeping what was typed.
    func payerField() -> String {
        let payers = options.payers.compactMap(\.payer)
        guard payers.count > 1, let selected = payer?.payer else {
            guard let only = payers.first else {
                return
                    "<p class=\"error\" id=\"no-payer\">This account has no payer yet, so nothing can be paid. Ask support to add one.</p>"
            }
            return """
                <p>Payer: <strong id="payer-name">\(HTML.escape(Display.payer(only)))</strong></p>
                <input type="hidden" name="payer" value="\(HTML.escape(only.id))">
                """
        }
        let choices = payers.map { payer in
            let chosen = payer.id == selected.id ? " selected" : ""
            return "<option value=\"\(HTML.escape(payer.id))\"\(chosen)>\(HTML.escape(Display.payer(payer)))</option>"
        }.joined()
        return """
            <fieldset><legend>Payer</legend>
            <label for="payer">The payment methods shown are this payer's</label>
            <select id="payer" name="payer" data-payer-select>\(choices)</select>
            <button type="submit" name="show" value="payer" class="secondary nojs" id="show-payer">Show this payer's methods</button>
            </fieldset>
            """
    }

    /// The radio group of payment options; `balance` adds "from the balance"
    /// first (renewals and migrations). `saveBox` adds "save this method".
    ///
    /// Each payer's options are rendered, the selected payer's shown and the
    /// others `hidden` and `disabled` (a disabled input is never sent): the
    /// script switches them when the payer changes, with no round trip.
    func optionFields(selected: String?, balance: String?, saveBox: Bool, saveChecked: Bool, error: String?) -> String {
        let described = error == nil ? "" : " aria-describedby=\"option-error\""
        func radio(
            _ value: String,
            _ label: String,
            id: String,
            checked: Bool,
            disabled: Bool,
            note: String = ""
        )
            -> String
        {
            """
            <label for="\(id)"><input type="radio" name="option" id="\(id)" value="\(HTML.escape(value))"\(checked ? " checked" : "")\(disabled ? " disabled" : "")\(described)> \(label)\(note)</label>
            """
        }
        var rows: [String] = []
        if let balance {
            rows.append(
                radio(
                    "balance",
                    "From the balance",
                    id: "option-balance",
                    checked: selected == "balance",
                    disabled: false,
                    note: " <span class=\"hint\">(\(HTML.escape(balance)))</span>"
                )
            )
        }
        for (payerIndex, payerOptions) in options.payers.enumerated() {
            let current = payerOptions.payer?.id == payer?.payer?.id
            // The selected payer's inputs keep plain ids (labels, tests); the others' are numbered.
            let suffix = current ? "" : "-\(payerIndex)"
            let chosen = current ? (selected ?? Self.defaultOption(payerOptions)) : nil
            var group: [String] = []
            if options.invoiceAvailable {
                group.append(
                    radio(
                        "invoice",
                        "Invoice",
                        id: "option-invoice\(suffix)",
                        checked: chosen == "invoice",
                        disabled: !current,
                        note: " <span class=\"hint\">(pay by bank transfer; credited when the transfer arrives)</span>"
                    )
                )
            }
            for (index, method) in payerOptions.methods.enumerated() {
                let isDefault = method.id == payerOptions.defaultMethodId ? ", default" : ""
                group.append(
                    radio(
                        "method:\(method.id)",
                        "\(HTML.escape(method.displayName)) · \(Display.system(method.system))",
                        id: "option-method\(suffix)-\(index)",
                        checked: chosen == "method:\(method.id)",
                        disabled: !current,
                        note: " <span class=\"hint\">(saved \(Display.day(method.createdAtUnixMs))\(isDefault))</span>"
                    )
                )
            }
            for system in options.paymentSystems {
                let key = Self.systemKey(system)
                group.append(
                    radio(
                        "system:\(key)",
                        "Pay with \(Display.system(system))",
                        id: "option-system-\(key)\(suffix)",
                        checked: chosen == "system:\(key)",
                        disabled: !current,
                        note: limitsNote(system)
                    )
                )
            }
            let name = HTML.escape(payerOptions.payer?.id ?? "")
            let fallback = HTML.escape(Self.defaultOption(payerOptions) ?? "")
            rows.append(
                """
                <div data-payer-options="\(name)" data-default="\(fallback)"\(current ? "" : " hidden")>
                \(group.joined(separator: "\n"))
                </div>
                """
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

    /// The seed: "if you have a default saved payment method, it is selected automatically".
    /// The option pre-selected for the payer shown (its default method), if any.
    var preselected: String? { payer.flatMap(Self.defaultOption) }

    private static func defaultOption(_ payer: BillingV1.PayerOptions) -> String? {
        payer.defaultMethodId.isEmpty ? nil : "method:\(payer.defaultMethodId)"
    }

    /// A payment system's limits, when they are narrower than the page's.
    private func limitsNote(_ system: BillingV1.PaymentSystem) -> String {
        guard let limits = options.systemLimits.first(where: { $0.system == system }),
            let low = limits.minAmount, let high = limits.maxAmount
        else { return "" }
        let from = max(low.amountMinorUnits, minimum.amountMinorUnits)
        let to = min(high.amountMinorUnits, maximum.amountMinorUnits)
        guard from != minimum.amountMinorUnits || to != maximum.amountMinorUnits else { return "" }
        let range = "\(Money(minorUnits: from, currency)) to \(Money(minorUnits: to, currency))"
        return " <span class=\"hint\">(\(HTML.escape(range)))</span>"
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
