/// A payment's status. New → Paid and New → Cancelled are the only moves.
public enum PaymentStatus: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    case new
    case paid
    case cancelled

    public var isFinal: Bool { self != .new }

    /// - Throws: `BillingError.invalidTransition` unless this is New and `target` is final.
    public func checkTransition(to target: PaymentStatus, paymentID: String) throws(BillingError) {
        guard self == .new, target.isFinal else {
            throw .invalidTransition(paymentID: paymentID, from: self, to: target)
        }
    }

    public var description: String {
        switch self {
        case .new: return "New"
        case .paid: return "Paid"
        case .cancelled: return "Cancelled"
        }
    }
}

public enum PaymentPurpose: String, Sendable, Hashable, Codable, CaseIterable {
    case topUp = "top_up"
    case renewal
    case migration
}

/// A saved method follows the payment it was saved with: Pending while that
/// payment is New, then Confirmed (Paid) or Failed (Cancelled). Removed is the
/// payer's choice and final.
public enum PaymentMethodStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case pending
    case confirmed
    case failed
    case removed
}

public enum PaymentOptionKind: String, Sendable, Hashable, Codable, CaseIterable {
    case invoice
    case savedMethod = "saved_method"
    case paymentSystem = "payment_system"
    case balance
}

public enum PaymentSystem: String, Sendable, Hashable, Codable, CaseIterable {
    case stripe
    case paypal
    case sandbox

    /// As people write it: "Stripe", "PayPal", "Sandbox".
    public var displayName: String {
        switch self {
        case .stripe: return "Stripe"
        case .paypal: return "PayPal"
        case .sandbox: return "Sandbox"
        }
    }
}
