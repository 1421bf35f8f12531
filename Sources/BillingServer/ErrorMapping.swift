internal import BillingCore
internal import BillingProviders
internal import BillingRPC
internal import Logging

/// Domain and provider errors to RPC statuses: the one place that decides
/// what a caller sees. Internal details (SQLite messages, provider bodies)
/// go to the log, not to the caller; each status keeps the error it came
/// from as its `cause`, which never leaves the process.
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
            return RPCError(.internal, "internal error", cause: error)
        }
    }

    static func status(_ error: BillingError, logger: Logger) -> RPCError {
        switch error {
        case .invalidArgument: return RPCError(.invalidArgument, error.description, cause: error)
        case .notFound: return RPCError(.notFound, error.description, cause: error)
        case .permissionDenied: return RPCError(.permissionDenied, error.description, cause: error)
        case .failedPrecondition, .insufficientFunds, .invalidTransition, .idempotencyKeyReused:
            return RPCError(.failedPrecondition, error.description, cause: error)
        case .alreadyExists: return RPCError(.alreadyExists, error.description, cause: error)
        case .storage(let detail, let retryable):
            logger.error("storage error", metadata: ["detail": "\(detail)"])
            return retryable
                ? RPCError(.unavailable, "storage is busy or unreachable; retry", cause: error)
                : RPCError(.internal, "internal storage error", cause: error)
        }
    }

    static func status(_ error: ProviderError, logger: Logger) -> RPCError {
        logger.warning("payment system error", metadata: ["error": "\(error)"])
        switch error {
        case .unavailable:
            return RPCError(
                .unavailable,
                "the payment system is unavailable; retry with the same idempotency key",
                cause: error
            )
        case .rejected: return RPCError(.failedPrecondition, "the payment system refused the payment", cause: error)
        case .malformed:
            return RPCError(.unavailable, "the payment system answered unexpectedly; retry later", cause: error)
        case .notConfigured(let system):
            return RPCError(.failedPrecondition, "payment system \(system.rawValue) is not available", cause: error)
        }
    }
}
