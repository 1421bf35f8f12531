public import BillingCore

/// A payment system as billingd needs it. Stripe, PayPal and the sandbox each
/// implement it; the server, the poller and refreshes only see this.
///
/// Every method may be called again for the same payment (after a timeout,
/// by a second poller, after a restart): implementations make the provider
/// see one payment however often they are called (idempotency keys derived
/// from our payment id).
public protocol PaymentProvider: Sendable {
    var system: PaymentSystem { get }

    /// How long a payment may stay New before it is expired at the provider
    /// and Cancelled here (a hosted page left open, an abandoned checkout).
    var paymentTimeToLive: Duration { get }

    /// Starts a payment on the provider's hosted page.
    func createPayment(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderPayment

    /// Charges a saved method off-session, no redirect.
    func chargeSavedMethod(_ payment: Payment, method: PaymentMethod) async throws(ProviderError) -> ProviderCharge

    /// What the provider says of a payment now.
    func checkPayment(_ payment: Payment) async throws(ProviderError) -> ProviderOutcome

    /// Expires an open payment so it can no longer be paid, then reports its
    /// final state (which may be Paid, if the person paid just before).
    /// `.pending` here means the money is already on its way (a bank debit
    /// processing, a capture under review) and can no longer be stopped: the
    /// caller keeps the payment New and checks again, never Cancels it.
    func expirePayment(_ payment: Payment) async throws(ProviderError) -> ProviderOutcome

    /// Detaches a saved method so it can no longer be charged.
    func removeMethod(_ method: PaymentMethod) async throws(ProviderError)

    /// Looks a saved-method charge up by our payment id alone, for a charge
    /// that may have happened without an answer (timeouts, a crash, a 5xx
    /// that the provider now replays for its idempotency key). nil: the
    /// payment system has nothing for this payment, so nothing was or will
    /// be taken. Throws when it cannot tell now: then nobody may cancel.
    func findCharge(_ payment: Payment, method: PaymentMethod) async throws(ProviderError) -> ProviderCharge?

    /// Every refund, chargeback and dispute won of a Paid payment the payment
    /// system knows of now, each with its own id (billingd records each once).
    func reversals(of payment: Payment) async throws(ProviderError) -> [ProviderReversal]

    // MARK: Reconciliation: reads only (nothing is created, captured or expired)

    /// What the payment system holds for this payment now; nil when it has
    /// nothing (never started, or forgotten).
    func record(of payment: Payment) async throws(ProviderError) -> Reconciliation.Record?

    /// Every payment the system took (paid) in [fromMs, toMs) that names one
    /// of our payment ids; nil when the system cannot list them.
    func takenPayments(fromMs: Int64, toMs: Int64) async throws(ProviderError) -> [Reconciliation.Record]?

    /// The methods saved there for these customers of ours (Stripe's cus_…),
    /// as billingd stores their references; nil when the system cannot list them.
    func savedMethods(customers: [String]) async throws(ProviderError) -> [String]?
}

/// Money taken back (or given back) at the payment system, as it reports it.
public struct ProviderReversal: Sendable, Hashable {
    public var kind: Reversal.Kind
    public var amount: Money
    /// The payment system's id of the refund or dispute.
    public var reference: String
    public var reason: String

    public init(kind: Reversal.Kind, amount: Money, reference: String, reason: String) {
        self.kind = kind
        self.amount = amount
        self.reference = reference
        self.reason = reason
    }
}

public struct ProviderPaymentRequest: Sendable, Hashable {
    public var payment: Payment
    public var payer: Payer
    /// Save the method used, for later off-session charges.
    public var saveMethod: Bool
    /// The payer's customer at this payment system, when one was made before
    /// (Stripe: one Customer per payer, made once).
    public var customerReference: String?

    public init(payment: Payment, payer: Payer, saveMethod: Bool, customerReference: String? = nil) {
        self.payment = payment
        self.payer = payer
        self.saveMethod = saveMethod
        self.customerReference = customerReference
    }
}

public struct ProviderPayment: Sendable, Hashable {
    /// The provider's id of the payment (session, order).
    public var reference: String
    /// Where the person pays.
    public var redirectURL: String
    /// The payer's customer the payment system used or made, to reuse.
    public var customerReference: String?

    public init(reference: String, redirectURL: String, customerReference: String? = nil) {
        self.reference = reference
        self.redirectURL = redirectURL
        self.customerReference = customerReference
    }
}

public struct ProviderCharge: Sendable, Hashable {
    public var reference: String
    public var outcome: ProviderOutcome
    /// The provider refused the saved method itself (detached, deleted,
    /// unknown): it can never be charged again and is marked Failed.
    public var methodUnusable: Bool

    public init(reference: String, outcome: ProviderOutcome, methodUnusable: Bool = false) {
        self.reference = reference
        self.outcome = outcome
        self.methodUnusable = methodUnusable
    }
}

/// A saved method as the provider reports it.
public struct SavedMethod: Sendable, Hashable {
    /// The provider's id (Stripe PaymentMethod, PayPal vault token).
    public var reference: String
    /// For people, e.g. "Visa •••• 4242".
    public var displayName: String

    public init(reference: String, displayName: String) {
        self.reference = reference
        self.displayName = displayName
    }
}

public enum ProviderOutcome: Sendable, Hashable {
    /// Not decided yet: check again later.
    case pending
    /// Not decided, and it will not be until the merchant acts at the payment
    /// system (PayPal holds a capture for the receiving account's settings,
    /// an unconfirmed email, …): the reason, for the operator. Checked like
    /// `pending`; the poller tells the operator when it lasts.
    case held(String)
    /// Money received; the saved method when one was asked for.
    case paid(SavedMethod?)
    /// Declined, failed, expired or cancelled; the reason is for people.
    case failed(String)
}

/// What went wrong talking to a provider. None of these changes a payment:
/// the caller keeps it New and checks again (with backoff), except
/// `rejected`, which the provider will never accept.
public enum ProviderError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Timeout, connection failure, 429 or 5xx: retry later.
    case unavailable(String)
    /// The provider refused the request as such (4xx): retrying will not help.
    case rejected(String, requestID: String?)
    /// An answer we could not understand; the provider's request id is kept.
    case malformed(String, requestID: String?)
    /// No provider is configured for this payment system.
    case notConfigured(PaymentSystem)

    public var description: String {
        switch self {
        case .unavailable(let why): return "payment system unavailable: \(why)"
        case .rejected(let why, let id):
            return "payment system refused the request: \(why)" + (id.map { " (request \($0))" } ?? "")
        case .malformed(let why, let id):
            return "unexpected answer from the payment system: \(why)" + (id.map { " (request \($0))" } ?? "")
        case .notConfigured(let system): return "payment system \(system.rawValue) is not configured"
        }
    }
}
