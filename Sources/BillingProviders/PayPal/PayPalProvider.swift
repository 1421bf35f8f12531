public import BillingCore
internal import Foundation

#if canImport(FoundationNetworking)
internal import FoundationNetworking
#endif

/// PayPal, through Orders v2 (`Tests/Interop/vendor/paypal-checkout_orders_v2.json`, a digest of PayPal's description)
/// with an OAuth2 client-credentials token.
///
/// Money moves only when we capture: the payer's approval on PayPal's page
/// is a promise, the capture is the payment. So billingd captures an APPROVED
/// order when it sees one (poll, refresh or expiry), with a `PayPal-Request-Id`
/// made from our payment id, and only a capture whose status is COMPLETED
/// makes the payment Paid. Expiry captures an approved order too: once the
/// payer approved, capturing is the only way both sides end up agreeing (a
/// poller's capture may already be in flight with the same request id).
///
/// A saved method's reference is PayPal's vault id; charging it creates an
/// order paid from the vault, which PayPal captures at once.
public final class PayPalProvider: PaymentProvider {
    public struct Configuration: Sendable {
        public var baseURL: String = "https://api-m.paypal.com"
        public var clientID: String
        /// From a file or the environment, never logged.
        public var clientSecret: String
        public var timeout: Duration = .seconds(15)
        /// PayPal forgets an order nobody approved after 3 hours.
        public var paymentTimeToLive: Duration = .seconds(3600)
        /// What the payer sees on PayPal's page as the purchase.
        public var productName: String = "Balance top-up"
        /// Overrides the business name on PayPal's page; empty keeps it.
        public var brandName: String = ""

        public init(clientID: String, clientSecret: String) {
            self.clientID = clientID
            self.clientSecret = clientSecret
        }
    }

    public let system = PaymentSystem.paypal
    public var paymentTimeToLive: Duration { configuration.paymentTimeToLive }
    private let configuration: Configuration
    private let http: ProviderHTTP
    private let token: AccessToken
    private let clientSecret: Secret

    public init(_ configuration: Configuration) {
        self.configuration = configuration
        http = ProviderHTTP(timeout: configuration.timeout)
        token = AccessToken()
        clientSecret = Secret(configuration.clientSecret)
    }

    /// The client secret rotated (a reload): the next call fetches a token
    /// with it rather than using one got with the old secret.
    /// True when it changed.
    @discardableResult
    public func replaceClientSecret(_ secret: String) async -> Bool {
        guard clientSecret.replace(with: secret) else { return false }
        await token.forget()
        return true
    }

    // MARK: PaymentProvider

    public func createPayment(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderPayment {
        let payment = request.payment
        let experience = PayPalAPI.ExperienceContext(
            returnURL: payment.returnURL,
            cancelURL: payment.returnURL,
            brandName: configuration.brandName.isEmpty ? nil : configuration.brandName
        )
        let wallet = PayPalAPI.Wallet(
            experienceContext: experience,
            attributes: request.saveMethod ? PayPalAPI.Attributes() : nil
        )
        let response = try await send(
            "POST",
            "/v2/checkout/orders",
            json: PayPalAPI.OrderRequest(purchaseUnits: [purchaseUnit(payment)], paymentSource: .init(paypal: wallet)),
            requestID: "\(payment.id)-order"
        )
        let order = try Self.order(response, doing: "creating the order")
        guard let id = order.id else { throw .malformed("order without an id", requestID: response.requestID) }
        guard let redirect = (order.links ?? []).first(where: { ["payer-action", "approve"].contains($0.rel) })?.href
        else {
            throw .malformed("order \(id) has no payer-action link", requestID: response.requestID)
        }
        return ProviderPayment(reference: id, redirectURL: redirect)
    }

    public func checkPayment(_ payment: Payment) async throws(ProviderError) -> ProviderOutcome {
        guard let order = try await order(of: payment) else {
            return .failed("the PayPal order expired or no longer exists")
        }
        if order.status == "APPROVED" { return try await capture(payment) }
        return try await outcome(of: order.order, payment: payment, requestID: order.requestID)
    }

    /// PayPal has no call that voids an order made for capture: an order
    /// nobody approved simply lapses, and we never capture it after this.
    public func expirePayment(_ payment: Payment) async throws(ProviderError) -> ProviderOutcome {
        guard let order = try await order(of: payment) else {
            return .failed("the PayPal order expired or no longer exists")
        }
        switch order.status {
        case "CREATED", "SAVED", "PAYER_ACTION_REQUIRED":
            return .failed("the PayPal order was not approved in time")
        case "APPROVED":
            return try await capture(payment)
        default:
            return try await outcome(of: order.order, payment: payment, requestID: order.requestID)
        }
    }

    public func chargeSavedMethod(
        _ payment: Payment,
        method: PaymentMethod
    ) async throws(ProviderError) -> ProviderCharge {
        let response = try await send(
            "POST",
            "/v2/checkout/orders",
            json: PayPalAPI.OrderRequest(
                purchaseUnits: [purchaseUnit(payment)],
                paymentSource: .init(paypal: .init(vaultID: method.providerReference))
            ),
            requestID: "\(payment.id)-charge"
        )
        if response.status == 422 {
            // The vaulted wallet cannot pay (declined, revoked, unknown).
            return ProviderCharge(
                reference: "",
                outcome: .failed("PayPal refused the saved method (\(Self.issue(response) ?? "UNPROCESSABLE_ENTITY"))")
            )
        }
        let order = try Self.order(response, doing: "charging the saved method")
        guard let id = order.id else { throw .malformed("order without an id", requestID: response.requestID) }
        return ProviderCharge(
            reference: id,
            outcome: try await outcome(of: order, payment: payment, requestID: response.requestID)
        )
    }

    /// Refunds of the order's capture (COMPLETED ones, partial included); a
    /// capture whose funds a dispute holds (PENDING for CHARGEBACK or
    /// BUYER_COMPLAINT) as a chargeback of what was not refunded; a capture
    /// COMPLETED (or refunded) again as that chargeback won, which gives back
    /// only what a chargeback took (the store caps it, so reporting it for a
    /// capture never disputed changes nothing). One chargeback per capture.
    public func reversals(of payment: Payment) async throws(ProviderError) -> [ProviderReversal] {
        guard let order = try await order(of: payment) else { return [] }
        let currency = payment.amount.currency
        let payments = order.order.purchaseUnits?.first?.payments
        func money(_ amount: PayPalAPI.Amount?) -> Money? {
            guard let amount, amount.currencyCode == currency.code, let value = amount.value,
                let money = try? Money(parsing: value, currency), money.amountMinorUnits > 0
            else { return nil }
            return money
        }
        var found: [ProviderReversal] = []
        var refunded: Int64 = 0
        for refund in payments?.refunds ?? [] where refund.status == "COMPLETED" {
            guard let id = refund.id, let amount = money(refund.amount) else { continue }
            refunded += amount.amountMinorUnits
            found.append(
                ProviderReversal(kind: .refund, amount: amount, reference: id, reason: refund.noteToPayer ?? "refunded")
            )
        }
        for capture in payments?.captures ?? [] {
            guard let id = capture.id, let amount = money(capture.amount) else { continue }
            let reason = capture.statusDetails?.reason ?? ""
            switch capture.status {
            case "PENDING" where reason == "CHARGEBACK" || reason == "BUYER_COMPLAINT":
                guard amount.amountMinorUnits > refunded else { continue }
                found.append(
                    ProviderReversal(
                        kind: .chargeback,
                        amount: Money(minorUnits: amount.amountMinorUnits - refunded, currency),
                        reference: id,
                        reason: "dispute (\(reason))"
                    )
                )
            case "COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED":
                found.append(
                    ProviderReversal(kind: .chargebackWon, amount: amount, reference: id, reason: "dispute won")
                )
            default:
                continue
            }
        }
        return found
    }

    /// PayPal has no search by our id; what it offers is its request-id memory
    /// (6 hours): the charge sent again under the same `PayPal-Request-Id`
    /// answers with the order it made then, if it made one, and is made now
    /// otherwise (the payer asked for it; it is taken once and credited).
    /// billingd only looks up inside that window (`unstartedChargeGrace` is
    /// at most 6 h), so this never charges twice.
    public func findCharge(_ payment: Payment, method: PaymentMethod) async throws(ProviderError) -> ProviderCharge? {
        try await chargeSavedMethod(payment, method: method)
    }

    /// Deletes the vaulted wallet (Payment Method Tokens v3); gone already is
    /// as good as deleted.
    public func removeMethod(_ method: PaymentMethod) async throws(ProviderError) {
        let response = try await send(
            "DELETE",
            "/v3/vault/payment-tokens/\(Self.pathSafe(method.providerReference))",
            json: nil,
            requestID: nil
        )
        guard (200..<300).contains(response.status) || response.status == 404 else {
            throw .rejected(
                "deleting the vaulted wallet answered HTTP \(response.status)",
                requestID: response.requestID
            )
        }
    }

    // MARK: Webhooks

    /// Asks PayPal whether it sent this delivery to the webhook `webhookID`
    /// (POST /v1/notifications/verify-webhook-signature): PayPal signs with a
    /// certificate and checks the signature itself. The event, or nil for a
    /// forgery or a body that is not an event.
    public func verifyWebhook(
        _ delivery: PayPalWebhookDelivery,
        webhookID: String
    ) async throws(ProviderError) -> PayPalWebhookEvent? {
        guard let event = try? JSONDecoder().decode(PayPalAPI.WebhookEvent.self, from: Data(delivery.body)) else {
            return nil
        }
        // PayPal checks the event byte for byte (its signature covers a CRC32
        // of what it sent): the delivered body goes back unchanged inside the
        // request, never parsed and re-serialized (key order, spacing and `{}`
        // would change). The other fields are JSON strings encoded here.
        let fields = [
            ("auth_algo", delivery.authAlgorithm), ("cert_url", delivery.certificateURL),
            ("transmission_id", delivery.transmissionID),
            ("transmission_sig", delivery.transmissionSignature), ("transmission_time", delivery.transmissionTime),
            ("webhook_id", webhookID),
        ]
        var request = Data("{".utf8)
        for (name, value) in fields {
            guard let encoded = try? JSONEncoder().encode(value) else { return nil }
            request += Data("\"\(name)\":".utf8) + encoded + Data(",".utf8)
        }
        request += Data("\"webhook_event\":".utf8) + Data(delivery.body) + Data("}".utf8)
        let response = try await send(
            "POST",
            "/v1/notifications/verify-webhook-signature",
            body: request,
            requestID: nil
        )
        let body = try ProviderHTTP.decode(PayPalAPI.Verification.self, response)
        guard response.status == 200 else {
            throw .rejected(
                "verifying the webhook answered HTTP \(response.status) \(body.name ?? "")",
                requestID: response.requestID
            )
        }
        guard let status = body.verificationStatus else {
            throw .malformed("verification without a verification_status", requestID: response.requestID)
        }
        guard status == "SUCCESS" else { return nil }
        // CHECKOUT.ORDER.* carry the order, PAYMENT.CAPTURE.* the capture:
        // both name our payment in custom_id.
        let resource = event.resource
        let paymentID = resource?.customID ?? resource?.purchaseUnits?.first?.customID
        let type = event.eventType ?? ""
        var vaulted: PayPalWebhookEvent.VaultedWallet?
        if type == "VAULT.PAYMENT-TOKEN.CREATED", let token = resource?.id, !token.isEmpty,
            let order = resource?.orderID
        {
            let email = resource?.emailAddress
            vaulted = .init(
                orderID: order,
                method: SavedMethod(reference: token, displayName: email.map { "PayPal (\($0))" } ?? "PayPal")
            )
        }
        return PayPalWebhookEvent(id: event.id ?? "", type: type, paymentID: paymentID, vaultedWallet: vaulted)
    }

    // MARK: Orders

    private func purchaseUnit(_ payment: Payment) -> PayPalAPI.PurchaseUnit {
        PayPalAPI.PurchaseUnit(
            referenceID: payment.id,
            customID: payment.id,
            invoiceID: payment.id,
            description: configuration.productName,
            amount: .init(currencyCode: payment.amount.currency.code, value: payment.amount.formatted)
        )
    }

    // MARK: Reconciliation

    /// The order read (never captured here): COMPLETED with a capture that
    /// took money is paid; approved or created is open; voided, declined
    /// or failed is failed.
    public func record(of payment: Payment) async throws(ProviderError) -> Reconciliation.Record? {
        guard !payment.providerReference.isEmpty, let order = try await order(of: payment) else { return nil }
        let capture = (order.order.purchaseUnits ?? []).flatMap { $0.payments?.captures ?? [] }.last
        let state: Reconciliation.Record.State
        switch (order.status, capture?.status) {
        case ("COMPLETED", "COMPLETED"?), ("COMPLETED", "PARTIALLY_REFUNDED"?), ("COMPLETED", "REFUNDED"?):
            state = .paid
        case ("COMPLETED", "PENDING"?), ("CREATED", _), ("SAVED", _), ("PAYER_ACTION_REQUIRED", _), ("APPROVED", _):
            state = .open
        default:
            state = .failed
        }
        var minor: Int64?
        if let amount = capture?.amount, let code = amount.currencyCode, let value = amount.value,
            let currency = try? Currency(code: code)
        {
            minor = (try? Money(parsing: value, currency))?.amountMinorUnits
        }
        return Reconciliation.Record(
            paymentID: payment.id,
            reference: payment.providerReference,
            state: state,
            amountMinorUnits: minor,
            currency: capture?.amount?.currencyCode
        )
    }

    /// Orders v2 has no call that lists orders or captures.
    public func takenPayments(fromMs: Int64, toMs: Int64) async throws(ProviderError) -> [Reconciliation.Record]? {
        nil
    }

    /// Listing a customer's vault tokens is outside the descriptions billingd uses.
    public func savedMethods(customers: [String]) async throws(ProviderError) -> [String]? {
        nil
    }

    private struct Order {
        let status: String
        let order: PayPalAPI.Order
        let requestID: String?
    }

    /// The order now, or nil when PayPal no longer knows it (it lapsed).
    private func order(of payment: Payment) async throws(ProviderError) -> Order? {
        let response = try await send(
            "GET",
            "/v2/checkout/orders/\(Self.pathSafe(payment.providerReference))",
            json: nil,
            requestID: nil
        )
        if response.status == 404 { return nil }
        let order = try Self.order(response, doing: "reading the order")
        guard let status = order.status else {
            throw .malformed("order without a status", requestID: response.requestID)
        }
        return Order(status: status, order: order, requestID: response.requestID)
    }

    /// Captures an approved order; the same request id on every attempt, so
    /// PayPal captures once however often we ask.
    private func capture(_ payment: Payment) async throws(ProviderError) -> ProviderOutcome {
        let path = "/v2/checkout/orders/\(Self.pathSafe(payment.providerReference))/capture"
        let response = try await send("POST", path, json: nil, requestID: "\(payment.id)-capture")
        if response.status == 404 { return .failed("the PayPal order expired before it was captured") }
        if response.status == 422 {
            switch Self.issue(response) {
            case "ORDER_ALREADY_CAPTURED":
                // Captured by an earlier attempt whose answer we lost.
                guard let order = try await order(of: payment) else {
                    return .failed("the PayPal order no longer exists")
                }
                return try await outcome(of: order.order, payment: payment, requestID: order.requestID)
            case "ORDER_NOT_APPROVED", "PAYER_ACTION_REQUIRED":
                // The payer has something left to do on PayPal's page.
                return .pending
            case let issue:
                // INSTRUMENT_DECLINED and the like: the payer starts a new top-up.
                return .failed("PayPal refused the capture (\(issue ?? "UNPROCESSABLE_ENTITY"))")
            }
        }
        return try await outcome(
            of: try Self.order(response, doing: "capturing the order"),
            payment: payment,
            requestID: response.requestID
        )
    }

    /// COMPLETED with a COMPLETED capture → Paid (with the vault id when
    /// saving was asked); a DECLINED or FAILED capture → Cancelled; a
    /// PENDING capture → New; VOIDED → Cancelled; not yet approved → New.
    private func outcome(
        of order: PayPalAPI.Order,
        payment: Payment,
        requestID: String?
    ) async throws(ProviderError) -> ProviderOutcome {
        guard let status = order.status else { throw .malformed("order without a status", requestID: requestID) }
        switch status {
        case "CREATED", "SAVED", "PAYER_ACTION_REQUIRED", "APPROVED":
            return .pending
        case "VOIDED":
            return .failed("PayPal voided the order")
        case "COMPLETED":
            let captures = (order.purchaseUnits ?? []).flatMap { $0.payments?.captures ?? [] }
            guard let capture = captures.last, let captureStatus = capture.status else {
                throw .malformed("completed order without a capture", requestID: requestID)
            }
            switch captureStatus {
            case "COMPLETED", "PARTIALLY_REFUNDED":
                return .paid(savedMethod(order, payment: payment))
            case "PENDING":
                // Some reasons wait for the merchant, not the payer or PayPal.
                let reason = capture.statusDetails?.reason ?? ""
                let merchantAction = [
                    "RECEIVING_PREFERENCE_MANDATES_MANUAL_ACTION", "UNILATERAL", "VERIFICATION_REQUIRED",
                    "INTERNATIONAL_WITHDRAWAL",
                ]
                return merchantAction.contains(reason)
                    ? .held("PayPal holds the capture until the merchant acts (\(reason))") : .pending
            case "DECLINED", "FAILED":
                return .failed("PayPal \(captureStatus.lowercased()) the capture")
            case "REFUNDED":
                return .failed("PayPal refunded the capture before it was credited")
            default:
                throw .malformed("unknown capture status \(captureStatus)", requestID: requestID)
            }
        default:
            throw .malformed("unknown order status \(status)", requestID: requestID)
        }
    }

    /// The vaulted wallet of a paid order, when the payer asked to save it.
    private func savedMethod(_ order: PayPalAPI.Order, payment: Payment) -> SavedMethod? {
        guard payment.savedPaymentMethodID != nil, let wallet = order.paymentSource?.paypal,
            let id = wallet.attributes?.vault?.id, !id.isEmpty
        else { return nil }
        let email = wallet.emailAddress
        return SavedMethod(reference: id, displayName: email.map { "PayPal (\($0))" } ?? "PayPal")
    }

    // MARK: HTTP

    /// A 2xx order body, or the error the status means.
    private static func order(
        _ response: ProviderHTTP.Response,
        doing what: String
    ) throws(ProviderError) -> PayPalAPI.Order {
        guard (200..<300).contains(response.status) else {
            let error = try ProviderHTTP.decode(PayPalAPI.ErrorAnswer.self, response)
            let message = error.message.map { ": \($0)" } ?? ""
            throw .rejected(
                "\(what) answered HTTP \(response.status) \(error.details?.first?.issue ?? error.name ?? "")\(message)",
                requestID: response.requestID
            )
        }
        return try ProviderHTTP.decode(PayPalAPI.Order.self, response)
    }

    private static func issue(_ response: ProviderHTTP.Response) -> String? {
        (try? ProviderHTTP.decode(PayPalAPI.ErrorAnswer.self, response))?.details?.first?.issue
    }

    /// One request with a valid token; a 401 means the token died early
    /// (revoked, clock skew): fetch a new one and send once more.
    private func send(
        _ method: String,
        _ path: String,
        json: PayPalAPI.OrderRequest?,
        requestID: String?
    ) async throws(ProviderError) -> ProviderHTTP.Response {
        // Sorted keys: a retry (even from another process) sends the very
        // same bytes under the same request id.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = try json.map { json throws(ProviderError) in
            guard let data = try? encoder.encode(json) else {
                throw .rejected("a request body could not be encoded", requestID: nil)
            }
            return data
        }
        return try await send(method, path, body: body, requestID: requestID)
    }

    private func send(
        _ method: String,
        _ path: String,
        body: Data?,
        requestID: String?
    ) async throws(ProviderError) -> ProviderHTTP.Response {
        let used = try await token.current(fetch)
        let first = try await sendOnce(method, path, body: body, requestID: requestID, token: used)
        guard first.status == 401 else { return first }
        let renewed = try await token.renew(fetch, replacing: used)
        return try await sendOnce(method, path, body: body, requestID: requestID, token: renewed)
    }

    private func sendOnce(
        _ method: String,
        _ path: String,
        body: Data?,
        requestID: String?,
        token: String
    ) async throws(ProviderError) -> ProviderHTTP.Response {
        guard let url = URL(string: configuration.baseURL + path) else {
            throw .rejected("bad PayPal URL", requestID: nil)
        }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        if method == "POST" {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            if path.hasPrefix("/v2/checkout/") {
                request.setValue("return=representation", forHTTPHeaderField: "Prefer")
            }
        }
        if let requestID { request.setValue(requestID, forHTTPHeaderField: "PayPal-Request-Id") }
        request.httpBody = body
        return try await http.send(request, requestIDHeader: "Paypal-Debug-Id")
    }

    /// POST /v1/oauth2/token with the client id and secret.
    @Sendable private func fetch() async throws(ProviderError) -> (token: String, lifetime: Duration) {
        guard let url = URL(string: configuration.baseURL + "/v1/oauth2/token") else {
            throw .rejected("bad PayPal URL", requestID: nil)
        }
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        let credentials = Data("\(configuration.clientID):\(clientSecret.value)".utf8).base64EncodedString()
        request.setValue("Basic \(credentials)", forHTTPHeaderField: "Authorization")
        request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
        request.httpBody = FormEncoding.encode([("grant_type", "client_credentials")])
        let response = try await http.send(request, requestIDHeader: "Paypal-Debug-Id")
        let body = try ProviderHTTP.decode(PayPalAPI.Token.self, response)
        guard response.status == 200 else {
            throw .rejected(
                "PayPal refused the client credentials (HTTP \(response.status) \(body.error ?? ""))",
                requestID: response.requestID
            )
        }
        guard let token = body.accessToken, !token.isEmpty, let seconds = body.expiresIn, seconds > 0 else {
            throw .malformed("token answer without access_token or expires_in", requestID: response.requestID)
        }
        return (token, .seconds(seconds))
    }

    /// Ids go into paths: refuse anything but PayPal's id alphabet.
    private static func pathSafe(_ id: String) -> String {
        id.filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
    }
}
