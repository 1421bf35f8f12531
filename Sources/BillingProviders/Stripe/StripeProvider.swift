public import BillingCore
internal import Foundation

#if canImport(FoundationNetworking)
internal import FoundationNetworking
#endif

/// Stripe, through Checkout Sessions (hosted page) and PaymentIntents
/// (off-session charges of saved cards). API version 2023-08-16, the one
/// `Tests/Interop/vendor/stripe-openapi.json` (a digest of Stripe's description) describes.
///
/// Every mutating call carries an `Idempotency-Key` made from our payment id
/// and the operation, so a retry (ours after a timeout, the poller's, a second
/// billingd's) never creates a second session or charge.
///
/// A saved method's reference is "cus_…/pm_…": Stripe charges a saved card
/// off-session only together with its customer.
public final class StripeProvider: PaymentProvider {
    public struct Configuration: Sendable {
        public var baseURL: String = "https://api.stripe.com"
        /// sk_live_… or sk_test_…; from a file or the environment, never logged.
        public var secretKey: String
        public var timeout: Duration = .seconds(15)
        /// Checkout Sessions live 24 h at Stripe by default; ours expire sooner.
        public var paymentTimeToLive: Duration = .seconds(3600)
        /// What the person sees on Stripe's page.
        public var productName: String = "Balance top-up"
        /// The payment methods the Checkout offers, said explicitly rather
        /// than inherited from the Stripe Dashboard (where a change would
        /// silently add, say, bank debits that settle days later).
        public var paymentMethodTypes: [String] = ["card"]

        public init(secretKey: String) {
            self.secretKey = secretKey
        }
    }

    public let system = PaymentSystem.stripe
    public var paymentTimeToLive: Duration { configuration.paymentTimeToLive }
    private let configuration: Configuration
    private let http: ProviderHTTP
    /// `configuration.secretKey` at start, then whatever a reload set.
    public let secretKey: Secret

    public init(_ configuration: Configuration) {
        self.configuration = configuration
        http = ProviderHTTP(timeout: configuration.timeout)
        secretKey = Secret(configuration.secretKey)
    }

    // MARK: PaymentProvider

    public func createPayment(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderPayment {
        let payment = request.payment
        var form: [(String, String)] =
            [
                ("mode", "payment"),
                ("line_items[0][price_data][currency]", payment.amount.currency.code.lowercased()),
                ("line_items[0][price_data][unit_amount]", String(payment.amount.amountMinorUnits)),
                ("line_items[0][price_data][product_data][name]", configuration.productName),
                ("line_items[0][quantity]", "1"),
                ("success_url", payment.returnURL),
                ("cancel_url", payment.returnURL),
                ("client_reference_id", payment.id),
                ("metadata[payment_id]", payment.id),
                ("metadata[account_id]", payment.accountID),
                ("payment_intent_data[metadata][payment_id]", payment.id),
            ] + configuration.paymentMethodTypes.enumerated().map { ("payment_method_types[\($0.offset)]", $0.element) }
        var customerID = request.customerReference
        if request.saveMethod && customerID == nil {
            // One Customer per payer, made once (billingd keeps its id). The
            // key names the payer and what is sent: a name changed within
            // Stripe's 24 h key memory makes a new request, never an
            // idempotency_error.
            let fields: [(String, String)] =
                [("name", request.payer.displayName), ("metadata[payer_id]", request.payer.id)]
                + (request.payer.email.isEmpty ? [] : [("email", request.payer.email)])
            let customer = try await post(
                "/v1/customers",
                fields,
                idempotencyKey: "\(request.payer.id)-customer-\(Self.fingerprint(fields))",
                as: StripeAPI.Identified.self
            )
            guard let id = customer.id else { throw .malformed("customer without an id", requestID: nil) }
            customerID = id
        }
        if request.saveMethod, let customerID {
            form.append(("customer", customerID))
            form.append(("payment_intent_data[setup_future_usage]", "off_session"))
        }
        let session = try await post(
            "/v1/checkout/sessions",
            form,
            idempotencyKey: "\(payment.id)-session",
            as: StripeAPI.CheckoutSession.self
        )
        guard let id = session.id, let url = session.url else {
            throw .malformed("checkout session without id or url", requestID: nil)
        }
        return ProviderPayment(
            reference: id,
            redirectURL: url,
            customerReference: request.saveMethod ? customerID : nil
        )
    }

    public func checkPayment(_ payment: Payment) async throws(ProviderError) -> ProviderOutcome {
        if payment.optionKind == .savedMethod { return try await checkIntent(payment) }
        let response = try await send(
            "GET",
            "/v1/checkout/sessions/\(Self.pathSafe(payment.providerReference))?expand[]=payment_intent",
            form: nil,
            idempotencyKey: nil
        )
        if response.status == 404 { return .failed("the Stripe checkout session no longer exists") }
        let session = try Self.answer(response, doing: "retrieving the session", as: StripeAPI.CheckoutSession.self)
        return try await outcome(of: session, payment: payment, requestID: response.requestID)
    }

    public func expirePayment(_ payment: Payment) async throws(ProviderError) -> ProviderOutcome {
        // An off-session charge has no page to close: it succeeded, failed,
        // or is processing (and cannot be stopped).
        if payment.optionKind == .savedMethod { return try await checkIntent(payment) }
        let path = "/v1/checkout/sessions/\(Self.pathSafe(payment.providerReference))/expire"
        // A key per attempt: Stripe keeps a failed (5xx) answer under its key
        // for 24 h, so one key would replay one failure for a day.
        let response = try await send(
            "POST",
            path,
            form: [],
            idempotencyKey: "\(payment.id)-expire-\(payment.checkAttempts)"
        )
        if response.status == 200 {
            return try await outcome(
                of: try ProviderHTTP.decode(StripeAPI.CheckoutSession.self, response),
                payment: payment,
                requestID: response.requestID
            )
        }
        // Already complete or expired (for example paid between our check and
        // this call): not an error for us; its state decides.
        if response.status == 400 || response.status == 404 { return try await checkPayment(payment) }
        throw .rejected("expiring the session answered HTTP \(response.status)", requestID: response.requestID)
    }

    public func chargeSavedMethod(
        _ payment: Payment,
        method: PaymentMethod
    ) async throws(ProviderError) -> ProviderCharge {
        let parts = method.providerReference.split(separator: "/")
        guard parts.count == 2 else {
            return ProviderCharge(reference: "", outcome: .failed("the saved method has no Stripe customer"))
        }
        let response = try await send(
            "POST",
            "/v1/payment_intents",
            form: [
                ("amount", String(payment.amount.amountMinorUnits)),
                ("currency", payment.amount.currency.code.lowercased()),
                ("customer", String(parts[0])),
                ("payment_method", String(parts[1])),
                ("off_session", "true"),
                ("confirm", "true"),
                ("metadata[payment_id]", payment.id),
            ],
            idempotencyKey: "\(payment.id)-charge"
        )
        if response.status != 200 {
            let error = try ProviderHTTP.decode(StripeAPI.ErrorAnswer.self, response).error
            if response.status == 402 || (response.status == 400 && error?.type == "card_error") {
                let reason = [error?.code, error?.declineCode].compactMap { $0 }.joined(separator: ": ")
                return ProviderCharge(
                    reference: error?.paymentIntent?.id ?? "",
                    outcome: .failed("card declined" + (reason.isEmpty ? "" : " (\(reason))"))
                )
            }
            if response.status == 400, let error, error.type == "invalid_request_error",
                error.code == "resource_missing" || error.param == "payment_method"
            {
                // The saved card itself is refused (detached, deleted): a
                // definitive answer about the method, which can never pay again.
                return ProviderCharge(
                    reference: "",
                    outcome: .failed("Stripe refused the saved method: \(error.message ?? "unusable")"),
                    methodUnusable: true
                )
            }
            throw .rejected(
                error?.message ?? "creating the payment intent answered HTTP \(response.status)",
                requestID: response.requestID
            )
        }
        let intent = try ProviderHTTP.decode(StripeAPI.PaymentIntent.self, response)
        guard let id = intent.id else {
            throw .malformed("payment intent without an id", requestID: response.requestID)
        }
        return ProviderCharge(reference: id, outcome: try Self.outcome(ofIntent: intent, requestID: response.requestID))
    }

    /// The PaymentIntent carrying our payment id in its metadata, found with
    /// Stripe's search (eventually consistent within about a minute; billingd
    /// only looks hours after the charge). A 5xx that Stripe replays for the
    /// charge's idempotency key says nothing; this does.
    public func findCharge(_ payment: Payment, method: PaymentMethod) async throws(ProviderError) -> ProviderCharge? {
        let query = "metadata['payment_id']:'\(Self.pathSafe(payment.id))'"
        guard let encoded = query.addingPercentEncoding(withAllowedCharacters: .alphanumerics) else { return nil }
        let response = try await send(
            "GET",
            "/v1/payment_intents/search?query=\(encoded)",
            form: nil,
            idempotencyKey: nil
        )
        let found = try Self.answer(
            response,
            doing: "searching payment intents",
            as: StripeAPI.List<StripeAPI.PaymentIntent>.self
        ).data
        // One charge per payment id (its idempotency key); the newest if ever more.
        guard let intent = found.max(by: { ($0.created ?? 0) < ($1.created ?? 0) }), let id = intent.id else {
            return nil
        }
        return ProviderCharge(reference: id, outcome: try Self.outcome(ofIntent: intent, requestID: response.requestID))
    }

    public func removeMethod(_ method: PaymentMethod) async throws(ProviderError) {
        guard let paymentMethod = method.providerReference.split(separator: "/").last else { return }
        let response = try await send(
            "POST",
            "/v1/payment_methods/\(Self.pathSafe(String(paymentMethod)))/detach",
            form: [],
            idempotencyKey: "\(method.id)-detach"
        )
        // Already detached is as good as detached.
        guard response.status == 200 || response.status == 400 || response.status == 404 else {
            throw .rejected("detaching answered HTTP \(response.status)", requestID: response.requestID)
        }
    }

    // MARK: Reversals

    /// Refunds (succeeded) and disputes of the payment's PaymentIntent: a
    /// dispute whose funds Stripe withdrew is a chargeback of its amount; one
    /// whose funds came back (won) also gives that amount back.
    public func reversals(of payment: Payment) async throws(ProviderError) -> [ProviderReversal] {
        guard let intent = try await intentID(of: payment) else { return [] }
        let currency = payment.amount.currency
        var found: [ProviderReversal] = []
        for refund in try await list("/v1/refunds", intent: intent, of: StripeAPI.Refund.self)
        where refund.status == "succeeded" {
            guard let id = refund.id, let amount = refund.amount, amount > 0,
                refund.currency?.uppercased() == currency.code
            else { continue }
            found.append(
                ProviderReversal(
                    kind: .refund,
                    amount: Money(minorUnits: amount, currency),
                    reference: id,
                    reason: refund.reason ?? "refunded"
                )
            )
        }
        for dispute in try await list("/v1/disputes", intent: intent, of: StripeAPI.Dispute.self) {
            guard let id = dispute.id, let amount = dispute.amount, amount > 0,
                dispute.currency?.uppercased() == currency.code
            else { continue }
            let movements = (dispute.balanceTransactions ?? []).compactMap(\.amount)
            let reason = "dispute (\(dispute.reason ?? "unstated"))"
            if movements.contains(where: { $0 < 0 }) {
                found.append(
                    ProviderReversal(
                        kind: .chargeback,
                        amount: Money(minorUnits: amount, currency),
                        reference: id,
                        reason: reason
                    )
                )
            }
            if movements.contains(where: { $0 > 0 }) {
                found.append(
                    ProviderReversal(
                        kind: .chargebackWon,
                        amount: Money(minorUnits: amount, currency),
                        reference: id,
                        reason: "dispute won"
                    )
                )
            }
        }
        return found
    }

    /// Our payment id from a PaymentIntent's metadata (webhooks about charges
    /// and disputes name only the PaymentIntent).
    public func paymentID(ofIntent intent: String) async throws(ProviderError) -> String? {
        let response = try await send(
            "GET",
            "/v1/payment_intents/\(Self.pathSafe(intent))",
            form: nil,
            idempotencyKey: nil
        )
        if response.status == 404 { return nil }
        return try Self.answer(response, doing: "retrieving the payment intent", as: StripeAPI.PaymentIntent.self)
            .metadata?["payment_id"]
    }

    /// The PaymentIntent of a payment: an off-session charge's reference, or
    /// the one a completed Checkout Session made.
    private func intentID(of payment: Payment) async throws(ProviderError) -> String? {
        if payment.optionKind == .savedMethod {
            return payment.providerReference.isEmpty ? nil : payment.providerReference
        }
        let response = try await send(
            "GET",
            "/v1/checkout/sessions/\(Self.pathSafe(payment.providerReference))",
            form: nil,
            idempotencyKey: nil
        )
        switch try Self.answer(response, doing: "retrieving the session", as: StripeAPI.CheckoutSession.self)
            .paymentIntent
        {
        case .id(let id)?: return id
        case .object(let intent)?: return intent.id
        case nil: return nil
        }
    }

    private func list<Element: Decodable>(
        _ path: String,
        intent: String,
        of: Element.Type
    ) async throws(ProviderError) -> [Element] {
        let response = try await send(
            "GET",
            "\(path)?payment_intent=\(Self.pathSafe(intent))&limit=100",
            form: nil,
            idempotencyKey: nil
        )
        return try Self.answer(response, doing: "listing \(path)", as: StripeAPI.List<Element>.self).data
    }

    // MARK: Mapping

    /// An off-session charge's PaymentIntent, retrieved.
    private func checkIntent(_ payment: Payment) async throws(ProviderError) -> ProviderOutcome {
        // Unstarted: only starting it (with its idempotency key) can tell.
        guard !payment.providerReference.isEmpty else {
            throw .rejected("payment \(payment.id) has no Stripe payment intent yet", requestID: nil)
        }
        let response = try await send(
            "GET",
            "/v1/payment_intents/\(Self.pathSafe(payment.providerReference))",
            form: nil,
            idempotencyKey: nil
        )
        if response.status == 404 { return .failed("the Stripe payment intent no longer exists") }
        let intent = try Self.answer(response, doing: "retrieving the payment intent", as: StripeAPI.PaymentIntent.self)
        return try Self.outcome(ofIntent: intent, requestID: response.requestID)
    }

    /// succeeded → Paid; processing (or authorized, awaiting capture) → New;
    /// anything asking for the customer → Cancelled: nobody is there
    /// off-session to act on it.
    private static func outcome(
        ofIntent intent: StripeAPI.PaymentIntent,
        requestID: String?
    ) throws(ProviderError) -> ProviderOutcome {
        guard let status = intent.status else {
            throw .malformed("payment intent without a status", requestID: requestID)
        }
        switch status {
        case "succeeded": return .paid(nil)
        case "processing", "requires_capture": return .pending
        case "requires_payment_method", "requires_action", "requires_confirmation", "canceled":
            let reason = intent.lastPaymentError?.code
            return .failed("the charge ended \(status)" + (reason.map { " (\($0))" } ?? ""))
        default: throw .malformed("unknown payment intent status \(status)", requestID: requestID)
        }
    }

    /// open → New; complete + paid → Paid; complete + unpaid → New (an
    /// asynchronous payment method); expired → Cancelled.
    private func outcome(
        of session: StripeAPI.CheckoutSession,
        payment: Payment,
        requestID: String?
    ) async throws(ProviderError) -> ProviderOutcome {
        guard let status = session.status else { throw .malformed("session without status", requestID: requestID) }
        switch status {
        case "open":
            return .pending
        case "expired":
            return .failed("the Stripe checkout expired before it was paid")
        case "complete":
            guard session.paymentStatus == "paid" else {
                // A delayed method (a bank debit): pending while its
                // PaymentIntent processes or waits for the customer to verify
                // the account (micro-deposits leave it requires_action for
                // days); Cancelled only once Stripe gave up on it.
                if let intent = session.paymentIntent?.expanded, let status = intent.status,
                    status == "requires_payment_method" || status == "canceled"
                {
                    let reason = intent.lastPaymentError?.code
                    return .failed("the charge ended \(status)" + (reason.map { " (\($0))" } ?? ""))
                }
                return .pending
            }
            guard payment.savedPaymentMethodID != nil,
                let customer = Self.id(session.customer),
                let method = Self.id(session.paymentIntent?.expanded?.paymentMethod)
            else {
                return .paid(nil)
            }
            return .paid(
                SavedMethod(reference: "\(customer)/\(method)", displayName: try await displayName(of: method))
            )
        default:
            throw .malformed("unknown session status \(status)", requestID: requestID)
        }
    }

    /// For people, from the PaymentMethod: "Visa •••• 4242", "STRIPE TEST
    /// BANK •••• 6789", "SEPA debit •••• 3000", "Link (jane@example.com)".
    private func displayName(of method: String) async throws(ProviderError) -> String {
        let response = try await send(
            "GET",
            "/v1/payment_methods/\(Self.pathSafe(method))",
            form: nil,
            idempotencyKey: nil
        )
        guard response.status == 200, let found = try? ProviderHTTP.decode(StripeAPI.PaymentMethod.self, response)
        else {
            return "Stripe payment method"
        }
        let type = found.type
        let details = found.details
        let last4 = details.last4
        switch type {
        case "card":
            return "\((details.brand ?? "card").capitalized) •••• \(last4 ?? "????")"
        case "us_bank_account", "au_becs_debit", "bacs_debit", "acss_debit":
            return "\(details.bankName ?? "Bank account") •••• \(last4 ?? "????")"
        case "sepa_debit":
            return "SEPA debit •••• \(last4 ?? "????")"
        case "link":
            return details.email.map { "Link (\($0))" } ?? "Link"
        default:
            return type.isEmpty ? "Stripe payment method" : type.replacingOccurrences(of: "_", with: " ").capitalized
        }
    }

    // MARK: HTTP

    private func post<T: Decodable>(
        _ path: String,
        _ form: [(String, String)],
        idempotencyKey: String,
        as type: T.Type
    ) async throws(ProviderError) -> T {
        let response = try await send("POST", path, form: form, idempotencyKey: idempotencyKey)
        return try Self.answer(response, doing: "POST \(path)", as: type)
    }

    /// A 200 answer as `T`; otherwise `.rejected` with Stripe's message (an
    /// answer that is not Stripe's JSON at all is `.malformed`).
    // MARK: Reconciliation

    public func record(of payment: Payment) async throws(ProviderError) -> Reconciliation.Record? {
        guard !payment.providerReference.isEmpty else { return nil }
        let reference = Self.pathSafe(payment.providerReference)
        if payment.optionKind == .savedMethod {
            let response = try await send("GET", "/v1/payment_intents/\(reference)", form: nil, idempotencyKey: nil)
            if response.status == 404 { return nil }
            let intent = try Self.answer(
                response,
                doing: "retrieving the payment intent",
                as: StripeAPI.PaymentIntent.self
            )
            return Self.record(intent, reference: payment.providerReference)
        }
        let response = try await send(
            "GET",
            "/v1/checkout/sessions/\(reference)?expand[]=payment_intent",
            form: nil,
            idempotencyKey: nil
        )
        if response.status == 404 { return nil }
        let session = try Self.answer(response, doing: "retrieving the session", as: StripeAPI.CheckoutSession.self)
        let state: Reconciliation.Record.State
        if session.paymentStatus == "paid" {
            state = .paid
        } else if session.status == "open" {
            state = .open
        } else if session.status == "complete", let intent = session.paymentIntent?.expanded {
            state = Self.record(intent, reference: payment.providerReference).state
        } else {
            state = .failed
        }
        return Reconciliation.Record(
            paymentID: payment.id,
            reference: payment.providerReference,
            state: state,
            amountMinorUnits: session.amountTotal,
            currency: session.currency
        )
    }

    /// The PaymentIntents created in the period that succeeded and name one
    /// of our payments (`metadata.payment_id`), 100 a page, at most 10,000.
    public func takenPayments(fromMs: Int64, toMs: Int64) async throws(ProviderError) -> [Reconciliation.Record]? {
        var records: [Reconciliation.Record] = []
        var after: String?
        for _ in 0..<100 {
            // Whole seconds covering [fromMs, toMs), without overflow at any bound.
            let toSeconds = toMs / 1000 + (toMs % 1000 > 0 ? 1 : 0)
            var query = "created[gte]=\(fromMs / 1000)&created[lt]=\(toSeconds)&limit=100"
            if let after { query += "&starting_after=\(Self.pathSafe(after))" }
            let response = try await send("GET", "/v1/payment_intents?\(query)", form: nil, idempotencyKey: nil)
            let page = try Self.answer(
                response,
                doing: "listing payment intents",
                as: StripeAPI.List<StripeAPI.PaymentIntent>.self
            )
            for intent in page.data where intent.status == "succeeded" {
                guard let id = intent.id, let paymentID = intent.metadata?["payment_id"] else { continue }
                records.append(Self.record(intent, reference: id, paymentID: paymentID))
            }
            guard page.hasMore == true, let last = page.data.last?.id else { return records }
            after = last
        }
        throw .unavailable("more than 10,000 Stripe payment intents in the period: reconcile a shorter one")
    }

    /// Each customer's PaymentMethods, as `cus_…/pm_…`.
    public func savedMethods(customers: [String]) async throws(ProviderError) -> [String]? {
        var references: [String] = []
        for customer in customers {
            var after: String?
            for page in 0... {
                guard page < 100 else {
                    throw .unavailable("customer \(customer) has more than 10,000 payment methods at Stripe")
                }
                var query = "customer=\(Self.pathSafe(customer))&limit=100"
                if let after { query += "&starting_after=\(Self.pathSafe(after))" }
                let response = try await send("GET", "/v1/payment_methods?\(query)", form: nil, idempotencyKey: nil)
                let list = try Self.answer(
                    response,
                    doing: "listing payment methods",
                    as: StripeAPI.List<StripeAPI.Identified>.self
                )
                references += list.data.compactMap { $0.id.map { "\(customer)/\($0)" } }
                guard list.hasMore == true, let last = list.data.last?.id else { break }
                after = last
            }
        }
        return references
    }

    private static func record(
        _ intent: StripeAPI.PaymentIntent,
        reference: String,
        paymentID: String? = nil
    ) -> Reconciliation.Record {
        let state: Reconciliation.Record.State
        switch intent.status {
        case "succeeded": state = .paid
        case "canceled", "requires_payment_method": state = .failed
        default: state = .open
        }
        return Reconciliation.Record(
            paymentID: paymentID ?? intent.metadata?["payment_id"],
            reference: reference,
            state: state,
            amountMinorUnits: intent.amount,
            currency: intent.currency
        )
    }

    private static func answer<T: Decodable>(
        _ response: ProviderHTTP.Response,
        doing what: String,
        as type: T.Type
    ) throws(ProviderError) -> T {
        guard response.status == 200 else {
            let message = try ProviderHTTP.decode(StripeAPI.ErrorAnswer.self, response).error?.message
            throw .rejected(message ?? "\(what) answered HTTP \(response.status)", requestID: response.requestID)
        }
        return try ProviderHTTP.decode(type, response)
    }

    private static func id(_ field: StripeAPI.Expandable<StripeAPI.Identified>?) -> String? {
        switch field {
        case .id(let id)?: id
        case .object(let object)?: object.id
        case nil: nil
        }
    }

    private func send(
        _ method: String,
        _ pathAndQuery: String,
        form: [(String, String)]?,
        idempotencyKey: String?
    ) async throws(ProviderError) -> ProviderHTTP.Response {
        guard let url = URL(string: configuration.baseURL + pathAndQuery) else {
            throw .rejected("bad Stripe URL", requestID: nil)
        }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.setValue("Bearer \(secretKey.value)", forHTTPHeaderField: "Authorization")
        request.setValue("2023-08-16", forHTTPHeaderField: "Stripe-Version")
        if let idempotencyKey { request.setValue(idempotencyKey, forHTTPHeaderField: "Idempotency-Key") }
        if let form {
            request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
            request.httpBody = FormEncoding.encode(form)
        }
        return try await http.send(request, requestIDHeader: "Request-Id")
    }

    /// 16 hex digits of FNV-1a over the fields: equal requests, equal keys.
    private static func fingerprint(_ fields: [(String, String)]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in fields.map({ "\($0.0)=\($0.1)" }).joined(separator: "&").utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        return String(hash, radix: 16)
    }

    /// Ids go into paths: refuse anything but Stripe's id alphabet.
    private static func pathSafe(_ id: String) -> String {
        id.filter { $0.isLetter || $0.isNumber || $0 == "_" }
    }
}
