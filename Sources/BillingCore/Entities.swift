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

    public init(
        id: String,
        payerID: String,
        system: PaymentSystem,
        status: PaymentMethodStatus,
        isDefault: Bool,
        displayName: String,
        providerReference: String,
        savedWithPaymentID: String,
        createdAtMs: Int64,
        updatedAtMs: Int64
    ) {
        self.id = id
        self.payerID = payerID
        self.system = system
        self.status = status
        self.isDefault = isDefault
        self.displayName = displayName
        self.providerReference = providerReference
        self.savedWithPaymentID = savedWithPaymentID
        self.createdAtMs = createdAtMs
        self.updatedAtMs = updatedAtMs
    }
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

    public init(
        id: String,
        accountID: String,
        payerID: String,
        purpose: PaymentPurpose,
        amount: Money,
        status: PaymentStatus,
        optionKind: PaymentOptionKind,
        system: PaymentSystem?,
        paymentMethodID: String?,
        savedPaymentMethodID: String?,
        providerReference: String,
        redirectURL: String,
        returnURL: String,
        invoiceNumber: String?,
        failureReason: String,
        renewalOrderID: String?,
        migrationOrderID: String?,
        createdAtMs: Int64,
        updatedAtMs: Int64,
        finishedAtMs: Int64?,
        nextCheckAtMs: Int64?,
        checkAttempts: Int
    ) {
        self.id = id
        self.accountID = accountID
        self.payerID = payerID
        self.purpose = purpose
        self.amount = amount
        self.status = status
        self.optionKind = optionKind
        self.system = system
        self.paymentMethodID = paymentMethodID
        self.savedPaymentMethodID = savedPaymentMethodID
        self.providerReference = providerReference
        self.redirectURL = redirectURL
        self.returnURL = returnURL
        self.invoiceNumber = invoiceNumber
        self.failureReason = failureReason
        self.renewalOrderID = renewalOrderID
        self.migrationOrderID = migrationOrderID
        self.createdAtMs = createdAtMs
        self.updatedAtMs = updatedAtMs
        self.finishedAtMs = finishedAtMs
        self.nextCheckAtMs = nextCheckAtMs
        self.checkAttempts = checkAttempts
    }
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

    public init(
        id: String,
        accountID: String,
        severity: Severity,
        title: String,
        body: String,
        paymentID: String?,
        createdAtMs: Int64
    ) {
        self.id = id
        self.accountID = accountID
        self.severity = severity
        self.title = title
        self.body = body
        self.paymentID = paymentID
        self.createdAtMs = createdAtMs
    }
}

/// One committed change. Appended in the transaction that makes the change,
/// with the next gap-free sequence number.
public struct Event: Sendable, Hashable, Codable {
    public enum Change: Sendable, Hashable, Codable {
        case paymentStatusChanged(Payment, previous: PaymentStatus?)
        case methodStatusChanged(PaymentMethod, previous: PaymentMethodStatus?)
        case balanceChanged(balance: Money, delta: Money, paymentID: String?, reference: String)
        case notification(Notification)
        case paymentReversed(Reversal)
    }

    /// Global: every account's events, gap-free (internal watchers of all accounts).
    public var sequence: UInt64
    /// The account's own events only, gap-free from 1: what an account's
    /// watchers resume by, so it counts nothing of other accounts.
    public var accountSequence: UInt64
    public var accountID: String
    public var atMs: Int64
    public var change: Change

    public init(sequence: UInt64, accountSequence: UInt64, accountID: String, atMs: Int64, change: Change) {
        self.sequence = sequence
        self.accountSequence = accountSequence
        self.accountID = accountID
        self.atMs = atMs
        self.change = change
    }
}

public struct RenewableService: Sendable, Hashable, Codable {
    public var id: String
    public var accountID: String
    public var displayName: String
    public var pricePerPeriod: Money
    public var periodDays: Int
    public var expiresAtMs: Int64
    public var updatedAtMs: Int64
    /// Renewing itself before it expires (`AutoRenewals`); nil: off.
    public var autoRenewal: AutoRenewal?

    public init(
        id: String,
        accountID: String,
        displayName: String,
        pricePerPeriod: Money,
        periodDays: Int,
        expiresAtMs: Int64,
        updatedAtMs: Int64,
        autoRenewal: AutoRenewal? = nil
    ) {
        self.id = id
        self.accountID = accountID
        self.displayName = displayName
        self.pricePerPeriod = pricePerPeriod
        self.periodDays = periodDays
        self.expiresAtMs = expiresAtMs
        self.updatedAtMs = updatedAtMs
        self.autoRenewal = autoRenewal
    }
}

/// A service's automatic renewal: one period, `daysBefore` days before it
/// expires, from the available balance and otherwise with the payer's
/// default saved method.
public struct AutoRenewal: Sendable, Hashable, Codable {
    /// 1 to 90, and at most the service's period (a longer lead would renew
    /// again as soon as a renewal completed).
    public var daysBefore: Int
    /// Whose default saved method pays what the balance does not; nil: the
    /// balance only.
    public var payerID: String?
    /// When the next attempt is due after a failed one (nil: at the window's
    /// start, `expiresAtMs - daysBefore`).
    public var nextAttemptAtMs: Int64?

    public init(daysBefore: Int, payerID: String?, nextAttemptAtMs: Int64? = nil) {
        self.daysBefore = daysBefore
        self.payerID = payerID
        self.nextAttemptAtMs = nextAttemptAtMs
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

    public init(
        id: String,
        accountID: String,
        externalID: String,
        description: String,
        serverPrice: Money,
        status: Status,
        paymentID: String?,
        createdAtMs: Int64,
        paidAtMs: Int64?
    ) {
        self.id = id
        self.accountID = accountID
        self.externalID = externalID
        self.description = description
        self.serverPrice = serverPrice
        self.status = status
        self.paymentID = paymentID
        self.createdAtMs = createdAtMs
        self.paidAtMs = paidAtMs
    }
}

/// One service renewed for some periods.
public struct RenewalItem: Sendable, Hashable, Codable {
    public var serviceID: String
    /// 1 to 120.
    public var periods: Int

    public init(serviceID: String, periods: Int) {
        self.serviceID = serviceID
        self.periods = periods
    }
}

public struct RenewalLine: Sendable, Hashable, Codable {
    public var serviceID: String
    public var periods: Int
    public var amount: Money
    /// What the expiry becomes if the renewal completes now.
    public var newExpiresAtMs: Int64

    public init(serviceID: String, periods: Int, amount: Money, newExpiresAtMs: Int64) {
        self.serviceID = serviceID
        self.periods = periods
        self.amount = amount
        self.newExpiresAtMs = newExpiresAtMs
    }
}

public struct RenewalOrder: Sendable, Hashable, Codable {
    public enum Status: String, Sendable, Hashable, Codable {
        case awaitingPayment = "awaiting_payment"
        case completed
        case cancelled
    }

    public var id: String
    public var accountID: String
    public var lines: [RenewalLine]
    public var total: Money
    /// The part of the total taken from the balance: all of it for an order
    /// paid from the balance; for one awaiting its payment, held until the
    /// payment ends (`Funds`); the payment brings the rest.
    public var fromBalance: Money
    public var status: Status
    public var paymentID: String?
    public var createdAtMs: Int64
    public var completedAtMs: Int64?
    /// An automatic renewal's period: the expiry it renews from (its one
    /// line's service). Nil for a renewal a person asked for. At most one
    /// order that is not cancelled renews a period.
    public var autoPeriodMs: Int64?

    public init(
        id: String,
        accountID: String,
        lines: [RenewalLine],
        total: Money,
        fromBalance: Money,
        status: Status,
        paymentID: String?,
        createdAtMs: Int64,
        completedAtMs: Int64?,
        autoPeriodMs: Int64? = nil
    ) {
        self.id = id
        self.accountID = accountID
        self.lines = lines
        self.total = total
        self.fromBalance = fromBalance
        self.status = status
        self.paymentID = paymentID
        self.createdAtMs = createdAtMs
        self.completedAtMs = completedAtMs
        self.autoPeriodMs = autoPeriodMs
    }
}

/// Money taken back after a payment was Paid (a refund, a chargeback), or
/// given back (a dispute won), as the payment system reports it. Recorded
/// once per `reference` (the payment system's id of it) as its own ledger
/// entry: the payment stays Paid and nothing is updated in place.
public struct Reversal: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        case refund
        case chargeback
        /// A dispute won: what the chargeback took comes back.
        case chargebackWon = "chargeback_won"
    }

    public var paymentID: String
    public var kind: Kind
    /// Positive: taken back, or given back for `chargebackWon`.
    public var amount: Money
    /// The payment system's id (Stripe re_…/dp_…, PayPal refund or capture id).
    public var reference: String
    public var reason: String

    public init(paymentID: String, kind: Kind, amount: Money, reference: String, reason: String) {
        self.paymentID = paymentID
        self.kind = kind
        self.amount = amount
        self.reference = reference
        self.reason = reason
    }
}
