internal import BillingAPI
internal import BillingMessages
internal import Hummingbird

/// Automatic renewal on the renewals page: each service's setting, and one
/// form to change a service's (SetAutoRenewal, the account's own call).
extension Panel {
    struct AutoRenewalForm: PanelForm {
        var csrf: String?
        var service: String?
        var days: String?
        var payer: String?
    }

    /// The leads a person picks from (billingd takes 1 to 90, at most the period).
    static let autoRenewalLeads = [1, 3, 7, 14, 30]

    /// "7 days before expiry, from the balance, then Jane Doe's default saved method" / "Off".
    static func describe(_ auto: BillingV1.AutoRenewal?, payers: [BillingV1.Payer]) -> String {
        guard let auto else { return "Off" }
        var text = "\(auto.daysBefore) day\(auto.daysBefore == 1 ? "" : "s") before expiry, from the balance"
        if !auto.payerId.isEmpty {
            let name = payers.first { $0.id == auto.payerId }?.displayName ?? auto.payerId
            text += ", then \(name)'s default saved method"
        }
        if auto.nextAttemptAtUnixMs != 0 { text += "; tried again at \(Display.time(auto.nextAttemptAtUnixMs))" }
        return text
    }

    /// The section: the settings, and the form.
    func autoRenewalSection(
        _ context: SignedIn,
        services: [BillingV1.RenewableService],
        payers: [BillingV1.Payer]
    ) -> String {
        let rows = services.map { service in
            "<tr><td>\(HTML.escape(service.displayName))</td><td data-auto=\"\(HTML.escape(service.id))\">\(HTML.escape(Self.describe(service.autoRenewal, payers: payers)))</td></tr>"
        }.joined()
        let serviceOptions = services.map {
            "<option value=\"\(HTML.escape($0.id))\">\(HTML.escape($0.displayName))</option>"
        }.joined()
        let leads =
            ([("0", "Off")] + Self.autoRenewalLeads.map { ("\($0)", "\($0) day\($0 == 1 ? "" : "s") before expiry") })
            .map { "<option value=\"\($0.0)\">\(HTML.escape($0.1))</option>" }.joined()
        let payerOptions =
            ["<option value=\"\">Nobody: from the balance only</option>"]
            + payers.map {
                "<option value=\"\(HTML.escape($0.id))\">\(HTML.escape($0.displayName))'s default saved method</option>"
            }
        return """
            <section id="auto-renewal"><h2>Automatic renewal</h2>
            <p class="hint">A service can renew itself for one period before it expires: from the balance, and what the balance does not cover from a payer's default saved method. A failed attempt is shown here and tried again until the service expires.</p>
            <table><thead><tr><th scope="col">Service</th><th scope="col">Automatic renewal</th></tr></thead><tbody>\(rows)</tbody></table>
            <form method="post" action="/renewals/auto" id="auto-renewal-form" class="filters">
            <input type="hidden" name="csrf" value="\(HTML.escape(context.visit.csrfToken))">
            <label for="auto-service">Service<br><select id="auto-service" name="service">\(serviceOptions)</select></label>
            <label for="auto-days">Renew<br><select id="auto-days" name="days">\(leads)</select></label>
            <label for="auto-payer">When the balance is short, charge<br><select id="auto-payer" name="payer">\(payerOptions.joined())</select></label>
            <button type="submit" id="auto-save">Save automatic renewal</button>
            </form></section>
            """
    }

    func setAutoRenewal(_ context: SignedIn, _ request: Request) async throws -> Response {
        let form = try await self.form(AutoRenewalForm.self, request, context.visit)
        func again(_ message: String) async throws -> Response {
            try await renewals(context, periods: [:], payerID: nil, message: message, status: .badRequest)
        }
        guard let service = form.service, Self.isID(service) else { return try await again("Choose a service.") }
        guard let days = form.days.flatMap({ Int($0.prefix(3)) }), days == 0 || Self.autoRenewalLeads.contains(days)
        else { return try await again("Choose how many days before expiry, or Off.") }
        let payer = form.payer ?? ""
        guard payer.isEmpty || Self.isID(payer) else { return try await again("Choose a payer of this account.") }
        var set = BillingV1.SetAutoRenewalRequest()
        set.accountId = context.account
        set.serviceId = service
        if days > 0 {
            var auto = BillingV1.AutoRenewal()
            auto.daysBefore = UInt32(days)
            auto.payerId = payer
            set.autoRenewal = auto
        }
        do {
            _ = try await billingd.renewal.setAutoRenewal(set, options: billingd.options)
        } catch {
            let problem = Problem(error)
            guard [400, 404, 409].contains(problem.status) else { throw problem }
            return try await again(problem.message)
        }
        logger.info("automatic renewal", metadata: ["account": "\(context.account)", "service": "\(service)"])
        return HTML.redirect("/renewals#auto-renewal", headers: context.visit.setCookie)
    }
}
