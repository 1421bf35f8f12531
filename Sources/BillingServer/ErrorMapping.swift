internal import BillingCore
internal import BillingProviders
internal import BillingRPC
internal import Logging

/// Domain and provider errors to RPC statuses: the one place that decides
/// what a caller sees. Internal details (SQLite messages, provider bodies)
/// go to the log, not to the caller.
enum ErrorMapping {
    static func status(_ error: any Error, logger: Logger) -> RPCError {
        switch error {
        case let error as RPCError:
            return error
        case let error as BillingError:
            return status(error, logger: logger)
        case let error as ProviderError:
            return status(error, logger: logger)
        default:
            logger.error("unexpected error", metadata: ["error": "\(type(of: error))"])
            return RPCError(.internal, "internal error")
        }
    }

    static func status(_ error: BillingError, logger: Logger) -> RPCError {
        switch error {
        case .invalidArgument: return RPCError(.invalidArgument, error.description)
        case .notFound: return RPCError(.notFound, error.description)
        case .permissionDenied: return RPCError(.permissionDenied, error.description)
        case .failedPrecondition, .insufficientFunds, .invalidTransition, .idempotencyKeyReused:
            return RPCError(.failedPrecondition, error.description)
        case .alreadyExists: return RPCError(.alreadyExists, error.description)
        case .storage(let detail, let retryable):
            logger.error("storage error", metadata: ["detail": "\(detail)"])
            return retryable ? RPCError(.unavailable, "storage is busy; retry") : RPCError(.internal, "internal storage error")
        }
    }

    static func status(_ error: ProviderError, logger: Logger) -> RPCError {
        logger.warning("payment system error", metadata: ["error": "\(error)"])
        switch error {
        case .unavailable: return RPCError(.unavailable, "the payment system is unavailable; retry with the same idempotency key")
        case .rejected: return RPCError(.failedPrecondition, "the payment system refused the payment")
        case .malformed: return RPCError(.unavailable, "the payment system answered unexpectedly; retry later")
        case .notConfigured(let system): return RPCError(.failedPrecondition, "payment system \(system.rawValue) is not available")
        }
    }
}
