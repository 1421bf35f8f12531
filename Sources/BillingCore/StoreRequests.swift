/// A top-up as the caller asked for it, before anything is stored.
public struct TopUpRequest: Sendable, Hashable {
    public var accountID: String
    public var payerID: String
    public var amount: Money
    public var option: PaymentOption

    public init(accountID: String, payerID: String, amount: Money, option: PaymentOption) {
        self.accountID = accountID
        self.payerID = payerID
        self.amount = amount
        self.option = option
    }

    /// A top-up brings money in: it cannot be paid from the balance.
    public func validate() throws(BillingError) {
        if case .balance = option { throw .invalidArgument("a top-up cannot be paid from the balance") }
    }

    /// Every field, in a fixed order: equal requests have equal fingerprints.
    public var fingerprint: String {
        "top_up|\(accountID)|\(payerID)|\(amount.amountMinorUnits)|\(amount.currency.code)|\(option)"
    }
}

/// What a payment system said when a payment finished.
public struct TransitionOutcome: Sendable, Hashable {
    public var target: PaymentStatus
    /// Cancelled: why, for people (a decline reason, "expired", an operator's note).
    public var failureReason: String
    /// Paid with a method being saved: the provider's id and display name of it.
    public var savedMethodReference: String?
    public var savedMethodDisplayName: String?
    /// Who ended a Cancelled payment: its failure at the payment system is an
    /// error the person is told of; their own or support's cancel is not.
    public var cancelledBy: Canceller = .paymentSystem
    /// Cancelled because the saved method charged was refused as such
    /// (detached, deleted): that method is marked Failed with it.
    public var chargedMethodUnusable = false

    public enum Canceller: Sendable, Hashable {
        /// Declined, failed, expired, refused: "Payment failed" (an error).
        case paymentSystem
        /// The account's own request: "Cancelled by you".
        case payer
        /// Support (an operator): "Cancelled by support".
        case support
    }

    public static let paid = TransitionOutcome(target: .paid, failureReason: "")

    public static func paid(savedMethodReference: String, displayName: String) -> TransitionOutcome {
        TransitionOutcome(
            target: .paid,
            failureReason: "",
            savedMethodReference: savedMethodReference,
            savedMethodDisplayName: displayName
        )
    }

    public static func cancelled(_ reason: String, by canceller: Canceller = .paymentSystem) -> TransitionOutcome {
        var outcome = TransitionOutcome(target: .cancelled, failureReason: reason)
        outcome.cancelledBy = canceller
        return outcome
    }

    public init(
        target: PaymentStatus,
        failureReason: String,
        savedMethodReference: String? = nil,
        savedMethodDisplayName: String? = nil
    ) {
        precondition(target.isFinal, "a transition goes to Paid or Cancelled")
        self.target = target
        self.failureReason = failureReason
        self.savedMethodReference = savedMethodReference
        self.savedMethodDisplayName = savedMethodDisplayName
    }
}

public enum TransitionResult: Sendable, Hashable {
    /// This call moved the payment; its effects were committed with it.
    case applied(Payment)
    /// It had already reached this status (an earlier poll, refresh or webhook).
    case alreadyFinal(Payment)

    public var payment: Payment {
        switch self {
        case .applied(let payment), .alreadyFinal(let payment): return payment
        }
    }
}

public struct PaymentQuery: Sendable, Hashable {
    public var accountID: String
    public var statuses: Set<PaymentStatus> = []
    public var purposes: Set<PaymentPurpose> = []
    public var payerID: String?
    public var createdFromMs: Int64?
    public var createdToMs: Int64?
    /// 1 to 200.
    public var pageSize: Int = 50
    public var pageToken: String?

    public init(accountID: String) {
        self.accountID = accountID
    }
}

public struct Page<Item: Sendable & Hashable>: Sendable, Hashable {
    public var items: [Item]
    /// nil on the last page.
    public var nextPageToken: String?

    public init(items: [Item], nextPageToken: String?) {
        self.items = items
        self.nextPageToken = nextPageToken
    }
}

/// The opaque cursor of a keyset page: the last row's sort key (a time or an
/// expiry, in Unix milliseconds) and id. Every paged list (payments,
/// notifications, renewable services) hands these out and reads them back
/// here, so every token from outside has one bound and one check.
public struct PageToken: Sendable, Hashable {
    /// A token this server made is at most ~90 bytes (20 digits, "~", a 64-byte
    /// id); anything longer is not one of ours, and is refused unread.
    public static let maxBytes = 100

    public let sortKey: Int64
    public let id: String

    public init(sortKey: Int64, id: String) {
        self.sortKey = sortKey
        self.id = id
    }

    public init(_ token: String) throws(BillingError) {
        guard token.utf8.count <= Self.maxBytes else {
            throw .invalidArgument("page token is not one this server gave")
        }
        let parts = token.split(separator: "~", maxSplits: 1)
        guard parts.count == 2, let key = Int64(parts[0]), (try? IDs.check(String(parts[1]), "id")) != nil else {
            throw .invalidArgument("page token is not one this server gave")
        }
        sortKey = key
        id = String(parts[1])
    }

    public var encoded: String { "\(sortKey)~\(id)" }
}

/// How much one read may return: a page of payments or notifications, a
/// batch of events.
public enum Paging {
    public static let maxPageSize = 200
    public static let maxEventBatch = 10_000

    public static func checkPageSize(_ size: Int) throws(BillingError) {
        guard (1...maxPageSize).contains(size) else { throw .invalidArgument("page size must be 1 to \(maxPageSize)") }
    }

    public static func checkEventBatch(_ limit: Int) throws(BillingError) {
        guard (1...maxEventBatch).contains(limit) else { throw .invalidArgument("limit must be 1 to \(maxEventBatch)") }
    }
}
