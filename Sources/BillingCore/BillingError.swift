/// The domain's one error type. Each case maps to one RPC status in one place
/// (the server) and to one CLI exit code. Messages are for people: they name
/// what is wrong and never carry secrets.
public enum BillingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The request itself is wrong (INVALID_ARGUMENT).
    case invalidArgument(String)
    /// An id that does not exist, or one the caller may not see (NOT_FOUND).
    case notFound(String)
    /// The caller may not do this (PERMISSION_DENIED).
    case permissionDenied(String)
    /// The request is fine but the state does not allow it (FAILED_PRECONDITION).
    case failedPrecondition(String)
    /// Paying from the balance needs more than is available: the balance
    /// less what renewals awaiting payment hold (FAILED_PRECONDITION).
    case insufficientFunds(available: Money, required: Money)
    /// A payment may only leave New, once (FAILED_PRECONDITION).
    case invalidTransition(paymentID: String, from: PaymentStatus, to: PaymentStatus)
    /// The same idempotency key was used for a different request (FAILED_PRECONDITION).
    case idempotencyKeyReused(String)
    /// Creating what exists with other fields (ALREADY_EXISTS).
    case alreadyExists(String)
    /// Storage could not do its work (UNAVAILABLE when retrying may help, else INTERNAL).
    case storage(String, retryable: Bool)

    public var description: String {
        switch self {
        case .invalidArgument(let why), .notFound(let why), .permissionDenied(let why),
            .failedPrecondition(let why), .alreadyExists(let why):
            return why
        case .insufficientFunds(let available, let required):
            let shortfall = (try? required.subtracting(available))?.description ?? "more"
            return "insufficient funds: available \(available), required \(required), short by \(shortfall)"
        case .invalidTransition(let id, let from, let to):
            return "payment \(id) cannot go from \(from) to \(to)"
        case .idempotencyKeyReused(let key):
            return "idempotency key \"\(key.prefix(64))\" was already used for a different request"
        case .storage(let why, _):
            return "storage: \(why)"
        }
    }
}
