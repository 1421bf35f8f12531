/// The records of the domain. Instants are milliseconds since the Unix epoch,
/// UTC (`…AtMs`), as in the API; ids are prefixed strings made by `IDs`.

public struct Account: Sendable, Hashable, Codable {
    public var id: String
    public var displayName: String
    public var currency: Currency
    public var createdAtMs: Int64

    public init(id: String, displayName: String, currency: Currency, createdAtMs: Int64) {
        self.id = id
        self.displayName = displayName
        self.currency = currency
        self.createdAtMs = createdAtMs
    }
}

public struct Payer: Sendable, Hashable, Codable {
    public var id: String
    public var accountID: String
    public var displayName: String
    public var email: String
    public var createdAtMs: Int64

    public init(id: String, accountID: String, displayName: String, email: String, createdAtMs: Int64) {
        self.id = id
        self.accountID = accountID
        self.displayName = displayName
        self.email = email
        self.createdAtMs = createdAtMs
    }
}

public struct PaymentMethod: Sendable, Hashable, Codable {
    public var id: String
    public var payerID: String
    public var system: PaymentSystem
    public var status: PaymentMethodStatus
    public var isDefault: Bool
    public var displayName: String
    /// The payment system's id of the saved method (Stripe PaymentMethod, PayPal vault id).
    public var providerReference: String
    public var savedWithPaymentID: String
    public var createdAtMs: Int64
    public var updatedAtMs: Int64
}

/// How a new payment is to be paid, as the caller chose it.
public enum PaymentOption: Sendable, Hashable, Codable {
    case invoice
    case savedMethod(id: String)
    case paymentSystem(PaymentSystem, saveMethod: Bool, returnURL: String)
    /// Renewals and migrations only.
    case balance

    public var kind: PaymentOptionKind {
        switch self {
        case .invoice: return .invoice
        case .savedMethod: return .savedMethod
        case .paymentSystem: return .paymentSystem
        case .balance: return .balance
        }
    }
}

public struct Payment: Sendable, Hashable, Codable {
    public var id: String
    public var accountID: String
    public var payerID: String
    public var purpose: PaymentPurpose
    public var amount: Money
    public var status: PaymentStatus
    public var optionKind: PaymentOptionKind
    public var system: PaymentSystem?
    public var paymentMethodID: String?
    public var savedPaymentMethodID: String?
    public var providerReference: String
    public var redirectURL: String
    public var returnURL: String
    public var invoiceNumber: String?
    public var failureReason: String
    public var renewalOrderID: String?
    public var migrationOrderID: String?
    public var createdAtMs: Int64
    public var updatedAtMs: Int64
    public var finishedAtMs: Int64?
    public var nextCheckAtMs: Int64?
    public var checkAttempts: Int
}

public struct Notification: Sendable, Hashable, Codable {
    public enum Severity: String, Sendable, Hashable, Codable {
        case info
        case error
    }

    public var id: String
    public var accountID: String
    public var severity: Severity
    public var title: String
    public var body: String
    public var paymentID: String?
    public var createdAtMs: Int64
}

/// One committed change. Appended in the transaction that makes the change,
/// with the next gap-free sequence number.
public struct Event: Sendable, Hashable, Codable {
    public enum Change: Sendable, Hashable, Codable {
        case paymentStatusChanged(Payment, previous: PaymentStatus?)
        case methodStatusChanged(PaymentMethod, previous: PaymentMethodStatus?)
        case balanceChanged(balance: Money, delta: Money, paymentID: String?, reference: String)
        case notification(Notification)
    }

    public var sequence: UInt64
    public var accountID: String
    public var atMs: Int64
    public var change: Change
}

public struct RenewableService: Sendable, Hashable, Codable {
    public var id: String
    public var accountID: String
    public var displayName: String
    public var pricePerPeriod: Money
    public var periodDays: Int
    public var expiresAtMs: Int64
    public var updatedAtMs: Int64

    public init(id: String, accountID: String, displayName: String, pricePerPeriod: Money, periodDays: Int, expiresAtMs: Int64, updatedAtMs: Int64) {
        self.id = id
        self.accountID = accountID
        self.displayName = displayName
        self.pricePerPeriod = pricePerPeriod
        self.periodDays = periodDays
        self.expiresAtMs = expiresAtMs
        self.updatedAtMs = updatedAtMs
    }
}

public struct MigrationOrder: Sendable, Hashable, Codable {
    public enum Status: String, Sendable, Hashable, Codable {
        case awaitingPayment = "awaiting_payment"
        case paymentPending = "payment_pending"
        case paid
    }

    public var id: String
    public var accountID: String
    public var externalID: String
    public var description: String
    public var serverPrice: Money
    public var status: Status
    public var paymentID: String?
    public var createdAtMs: Int64
    public var paidAtMs: Int64?
}
