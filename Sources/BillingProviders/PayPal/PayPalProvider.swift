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

    public init(_ configuration: Configuration) {
        self.configuration = configuration
        http = ProviderHTTP(timeout: configuration.timeout)
        token = AccessToken()
    }

    // MARK: PaymentProvider

    public func createPayment(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderPayment {
        let payment = request.payment
        var experience: [String: Any] = [
            "return_url": payment.returnURL,
            "cancel_url": payment.returnURL,
            "user_action": "PAY_NOW",
            "shipping_preference": "NO_SHIPPING",
        ]
        if !configuration.brandName.isEmpty { experience["brand_name"] = configuration.brandName }
        var wallet: [String: Any] = ["experience_context": experience]
        if request.saveMethod {
            wallet["attributes"] = ["vault": ["store_in_vault": "ON_SUCCESS", "usage_type": "MERCHANT", "customer_type": "CONSUMER"]]
        }
        let response = try await send("POST", "/v2/checkout/orders", json: [
            "intent": "CAPTURE",
            "purchase_units": [purchaseUnit(payment)],
            "payment_source": ["paypal": wallet],
        ], requestID: "\(payment.id)-order")
        let order = try Self.order(response, doing: "creating the order")
        guard let id = order["id"] as? String else { throw .malformed("order without an id", requestID: response.requestID) }
        let links = order["links"] as? [[String: Any]] ?? []
        guard let redirect = links.first(where: { ["payer-action", "approve"].contains($0["rel"] as? String) })?["href"] as? String else {
            throw .malformed("order \(id) has no payer-action link", requestID: response.requestID)
        }
        return ProviderPayment(reference: id, redirectURL: redirect)
    }

    public func checkPayment(_ payment: Payment) async throws(ProviderError) -> ProviderOutcome {
        guard let order = try await order(of: payment) else { return .failed("the PayPal order expired or no longer exists") }
        if order.status == "APPROVED" { return try await capture(payment) }
        return try await outcome(of: order.body, payment: payment, requestID: order.requestID)
    }

    /// PayPal has no call that voids an order made for capture: an order
    /// nobody approved simply lapses, and we never capture it after this.
    public func expirePayment(_ payment: Payment) async throws(ProviderError) -> ProviderOutcome {
        guard let order = try await order(of: payment) else { return .failed("the PayPal order expired or no longer exists") }
        switch order.status {
        case "CREATED", "SAVED", "PAYER_ACTION_REQUIRED":
            return .failed("the PayPal order was not approved in time")
        case "APPROVED":
            return try await capture(payment)
        default:
            return try await outcome(of: order.body, payment: payment, requestID: order.requestID)
        }
    }

    public func chargeSavedMethod(_ payment: Payment, method: PaymentMethod) async throws(ProviderError) -> ProviderCharge {
        let response = try await send("POST", "/v2/checkout/orders", json: [
            "intent": "CAPTURE",
            "purchase_units": [purchaseUnit(payment)],
            "payment_source": ["paypal": ["vault_id": method.providerReference]],
        ], requestID: "\(payment.id)-charge")
        if response.status == 422 {
            // The vaulted wallet cannot pay (declined, revoked, unknown).
            return ProviderCharge(reference: "", outcome: .failed("PayPal refused the saved method (\(Self.issue(response) ?? "UNPROCESSABLE_ENTITY"))"))
        }
        let order = try Self.order(response, doing: "charging the saved method")
        guard let id = order["id"] as? String else { throw .malformed("order without an id", requestID: response.requestID) }
        return ProviderCharge(reference: id, outcome: try await outcome(of: order, payment: payment, requestID: response.requestID))
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
        let payments = ((order.body["purchase_units"] as? [[String: Any]])?.first?["payments"] as? [String: Any]) ?? [:]
        func money(_ amount: Any?) -> Money? {
            guard let amount = amount as? [String: Any], amount["currency_code"] as? String == currency.code,
                  let value = amount["value"] as? String, let money = try? Money(parsing: value, currency), money.amountMinorUnits > 0 else { return nil }
            return money
        }
        var found: [ProviderReversal] = []
        var refunded: Int64 = 0
        for refund in payments["refunds"] as? [[String: Any]] ?? [] where refund["status"] as? String == "COMPLETED" {
            guard let id = refund["id"] as? String, let amount = money(refund["amount"]) else { continue }
            refunded += amount.amountMinorUnits
            found.append(ProviderReversal(kind: .refund, amount: amount, reference: id, reason: refund["note_to_payer"] as? String ?? "refunded"))
        }
        for capture in payments["captures"] as? [[String: Any]] ?? [] {
            guard let id = capture["id"] as? String, let amount = money(capture["amount"]) else { continue }
            let reason = (capture["status_details"] as? [String: Any])?["reason"] as? String ?? ""
            switch capture["status"] as? String {
            case "PENDING" where reason == "CHARGEBACK" || reason == "BUYER_COMPLAINT":
                guard amount.amountMinorUnits > refunded else { continue }
                found.append(ProviderReversal(kind: .chargeback, amount: Money(minorUnits: amount.amountMinorUnits - refunded, currency),
                                              reference: id, reason: "dispute (\(reason))"))
            case "COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED":
                found.append(ProviderReversal(kind: .chargebackWon, amount: amount, reference: id, reason: "dispute won"))
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
        let response = try await send("DELETE", "/v3/vault/payment-tokens/\(Self.pathSafe(method.providerReference))", json: nil, requestID: nil)
        guard (200..<300).contains(response.status) || response.status == 404 else {
            throw .rejected("deleting the vaulted wallet answered HTTP \(response.status)", requestID: response.requestID)
        }
    }

    // MARK: Webhooks

    /// Asks PayPal whether it sent this delivery to the webhook `webhookID`
    /// (POST /v1/notifications/verify-webhook-signature): PayPal signs with a
    /// certificate and checks the signature itself. The event, or nil for a
    /// forgery or a body that is not an event.
    public func verifyWebhook(_ delivery: PayPalWebhookDelivery, webhookID: String) async throws(ProviderError) -> PayPalWebhookEvent? {
        guard let event = try? JSONSerialization.jsonObject(with: Data(delivery.body)) as? [String: Any] else { return nil }
        // PayPal checks the event byte for byte (its signature covers a CRC32
        // of what it sent): the delivered body goes back unchanged inside the
        // request, never parsed and re-serialized (key order, spacing and `{}`
        // would change). The other fields are JSON strings encoded here.
        let fields = [
            ("auth_algo", delivery.authAlgorithm), ("cert_url", delivery.certificateURL), ("transmission_id", delivery.transmissionID),
            ("transmission_sig", delivery.transmissionSignature), ("transmission_time", delivery.transmissionTime), ("webhook_id", webhookID),
        ]
        var request = Data("{".utf8)
        for (name, value) in fields {
            guard let encoded = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]) else { return nil }
            request += Data("\"\(name)\":".utf8) + encoded + Data(",".utf8)
        }
        request += Data("\"webhook_event\":".utf8) + Data(delivery.body) + Data("}".utf8)
        let response = try await send("POST", "/v1/notifications/verify-webhook-signature", body: request, requestID: nil)
        let body = try ProviderHTTP.object(response)
        guard response.status == 200 else {
            throw .rejected("verifying the webhook answered HTTP \(response.status) \(body["name"] as? String ?? "")", requestID: response.requestID)
        }
        guard let status = body["verification_status"] as? String else {
            throw .malformed("verification without a verification_status", requestID: response.requestID)
        }
        guard status == "SUCCESS" else { return nil }
        // CHECKOUT.ORDER.* carry the order, PAYMENT.CAPTURE.* the capture:
        // both name our payment in custom_id.
        let resource = event["resource"] as? [String: Any] ?? [:]
        let paymentID = (resource["custom_id"] as? String)
            ?? ((resource["purchase_units"] as? [[String: Any]])?.first?["custom_id"] as? String)
        let type = event["event_type"] as? String ?? ""
        var vaulted: PayPalWebhookEvent.VaultedWallet?
        if type == "VAULT.PAYMENT-TOKEN.CREATED", let token = resource["id"] as? String, !token.isEmpty,
           let order = (resource["metadata"] as? [String: Any])?["order_id"] as? String {
            let email = ((resource["payment_source"] as? [String: Any])?["paypal"] as? [String: Any])?["email_address"] as? String
            vaulted = .init(orderID: order, method: SavedMethod(reference: token, displayName: email.map { "PayPal (\($0))" } ?? "PayPal"))
        }
        return PayPalWebhookEvent(id: event["id"] as? String ?? "", type: type, paymentID: paymentID, vaultedWallet: vaulted)
    }

    // MARK: Orders

    private func purchaseUnit(_ payment: Payment) -> [String: Any] {
        [
            "reference_id": payment.id,
            "custom_id": payment.id,
            "invoice_id": payment.id,
            "description": configuration.productName,
            "amount": ["currency_code": payment.amount.currency.code, "value": payment.amount.formatted],
        ]
    }

    private struct Order {
        let status: String
        let body: [String: Any]
        let requestID: String?
    }

    /// The order now, or nil when PayPal no longer knows it (it lapsed).
    private func order(of payment: Payment) async throws(ProviderError) -> Order? {
        let response = try await send("GET", "/v2/checkout/orders/\(Self.pathSafe(payment.providerReference))", json: nil, requestID: nil)
        if response.status == 404 { return nil }
        let body = try Self.order(response, doing: "reading the order")
        guard let status = body["status"] as? String else { throw .malformed("order without a status", requestID: response.requestID) }
        return Order(status: status, body: body, requestID: response.requestID)
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
                guard let order = try await order(of: payment) else { return .failed("the PayPal order no longer exists") }
                return try await outcome(of: order.body, payment: payment, requestID: order.requestID)
            case "ORDER_NOT_APPROVED", "PAYER_ACTION_REQUIRED":
                // The payer has something left to do on PayPal's page.
                return .pending
            case let issue:
                // INSTRUMENT_DECLINED and the like: the payer starts a new top-up.
                return .failed("PayPal refused the capture (\(issue ?? "UNPROCESSABLE_ENTITY"))")
            }
        }
        return try await outcome(of: try Self.order(response, doing: "capturing the order"), payment: payment, requestID: response.requestID)
    }

    /// COMPLETED with a COMPLETED capture → Paid (with the vault id when
    /// saving was asked); a DECLINED or FAILED capture → Cancelled; a
    /// PENDING capture → New; VOIDED → Cancelled; not yet approved → New.
    private func outcome(of order: [String: Any], payment: Payment, requestID: String?) async throws(ProviderError) -> ProviderOutcome {
        guard let status = order["status"] as? String else { throw .malformed("order without a status", requestID: requestID) }
        switch status {
        case "CREATED", "SAVED", "PAYER_ACTION_REQUIRED", "APPROVED":
            return .pending
        case "VOIDED":
            return .failed("PayPal voided the order")
        case "COMPLETED":
            let units = order["purchase_units"] as? [[String: Any]] ?? []
            let captures = units.flatMap { (($0["payments"] as? [String: Any])?["captures"] as? [[String: Any]]) ?? [] }
            guard let capture = captures.last, let captureStatus = capture["status"] as? String else {
                throw .malformed("completed order without a capture", requestID: requestID)
            }
            switch captureStatus {
            case "COMPLETED", "PARTIALLY_REFUNDED":
                return .paid(savedMethod(order, payment: payment))
            case "PENDING":
                // Some reasons wait for the merchant, not the payer or PayPal.
                let reason = (capture["status_details"] as? [String: Any])?["reason"] as? String ?? ""
                let merchantAction = ["RECEIVING_PREFERENCE_MANDATES_MANUAL_ACTION", "UNILATERAL", "VERIFICATION_REQUIRED",
                                      "INTERNATIONAL_WITHDRAWAL"]
                return merchantAction.contains(reason) ? .held("PayPal holds the capture until the merchant acts (\(reason))") : .pending
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
    private func savedMethod(_ order: [String: Any], payment: Payment) -> SavedMethod? {
        guard payment.savedPaymentMethodID != nil,
              let wallet = (order["payment_source"] as? [String: Any])?["paypal"] as? [String: Any],
              let vault = (wallet["attributes"] as? [String: Any])?["vault"] as? [String: Any],
              let id = vault["id"] as? String, !id.isEmpty else { return nil }
        let email = wallet["email_address"] as? String
        return SavedMethod(reference: id, displayName: email.map { "PayPal (\($0))" } ?? "PayPal")
    }

    // MARK: HTTP

    /// A 2xx order body, or the error the status means.
    private static func order(_ response: ProviderHTTP.Response, doing what: String) throws(ProviderError) -> [String: Any] {
        let body = try ProviderHTTP.object(response)
        guard (200..<300).contains(response.status) else {
            let message = (body["message"] as? String).map { ": \($0)" } ?? ""
            throw .rejected("\(what) answered HTTP \(response.status) \(issue(body) ?? (body["name"] as? String ?? ""))\(message)",
                            requestID: response.requestID)
        }
        return body
    }

    private static func issue(_ response: ProviderHTTP.Response) -> String? {
        (try? ProviderHTTP.object(response)).flatMap(issue)
    }

    private static func issue(_ body: [String: Any]) -> String? {
        ((body["details"] as? [[String: Any]])?.first?["issue"] as? String)
    }

    /// One request with a valid token; a 401 means the token died early
    /// (revoked, clock skew): fetch a new one and send once more.
    private func send(_ method: String, _ path: String, json: [String: Any]?, requestID: String?) async throws(ProviderError) -> ProviderHTTP.Response {
        // Sorted keys: a retry (even from another process) sends the very
        // same bytes under the same request id.
        let body = try json.map { json throws(ProviderError) in
            guard let data = try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]) else {
                throw .rejected("a request body could not be encoded", requestID: nil)
            }
            return data
        }
        return try await send(method, path, body: body, requestID: requestID)
    }

    private func send(_ method: String, _ path: String, body: Data?, requestID: String?) async throws(ProviderError) -> ProviderHTTP.Response {
        let used = try await token.current(fetch)
        let first = try await sendOnce(method, path, body: body, requestID: requestID, token: used)
        guard first.status == 401 else { return first }
        let renewed = try await token.renew(fetch, replacing: used)
        return try await sendOnce(method, path, body: body, requestID: requestID, token: renewed)
    }

    private func sendOnce(_ method: String, _ path: String, body: Data?, requestID: String?,
                          token: String) async throws(ProviderError) -> ProviderHTTP.Response {
        guard let url = URL(string: configuration.baseURL + path) else { throw .rejected("bad PayPal URL", requestID: nil) }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        if method == "POST" {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            if path.hasPrefix("/v2/checkout/") { request.setValue("return=representation", forHTTPHeaderField: "Prefer") }
        }
        if let requestID { request.setValue(requestID, forHTTPHeaderField: "PayPal-Request-Id") }
        request.httpBody = body
        return try await http.send(request, requestIDHeader: "Paypal-Debug-Id")
    }

    /// POST /v1/oauth2/token with the client id and secret.
    @Sendable private func fetch() async throws(ProviderError) -> (token: String, lifetime: Duration) {
        guard let url = URL(string: configuration.baseURL + "/v1/oauth2/token") else { throw .rejected("bad PayPal URL", requestID: nil) }
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        let credentials = Data("\(configuration.clientID):\(configuration.clientSecret)".utf8).base64EncodedString()
        request.setValue("Basic \(credentials)", forHTTPHeaderField: "Authorization")
        request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
        request.httpBody = FormEncoding.encode([("grant_type", "client_credentials")])
        let response = try await http.send(request, requestIDHeader: "Paypal-Debug-Id")
        let body = try ProviderHTTP.object(response)
        guard response.status == 200 else {
            throw .rejected("PayPal refused the client credentials (HTTP \(response.status) \(body["error"] as? String ?? ""))", requestID: response.requestID)
        }
        guard let token = body["access_token"] as? String, !token.isEmpty, let seconds = body["expires_in"] as? Int, seconds > 0 else {
            throw .malformed("token answer without access_token or expires_in", requestID: response.requestID)
        }
        return (token, .seconds(seconds))
    }

    /// Ids go into paths: refuse anything but PayPal's id alphabet.
    private static func pathSafe(_ id: String) -> String {
        id.filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
    }
}
