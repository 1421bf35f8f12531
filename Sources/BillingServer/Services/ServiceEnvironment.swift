internal import BillingCore
internal import BillingRPC
internal import BillingStorage
internal import Logging

/// What every service needs, built once at start.
struct ServiceEnvironment: Sendable {
    let store: any BillingStore
    let flows: PaymentFlows
    let policy: TopUpPolicy
    let defaultCurrency: Currency
    let streams: EventStreams
    let logger: Logger

    /// Runs a call's body, mapping every error to its RPC status in one place
    /// and logging the call with its request id.
    func call<T: Sendable>(_ context: ServerContext, _ body: (Authorization) async throws -> T) async throws -> T {
        var logger = self.logger
        logger[metadataKey: "method"] = "\(context.method)"
        if let requestID = context.requestID { logger[metadataKey: "request_id"] = "\(requestID.prefix(64))" }
        do {
            return try await body(Authorization(context))
        } catch {
            let status = ErrorMapping.status(error, logger: logger)
            logger.debug("call failed", metadata: ["code": "\(status.code)", "message": "\(status.message)"])
            throw status
        }
    }

    func idempotencyKey(_ context: ServerContext) throws(BillingError) -> IdempotencyKey? {
        try context.idempotencyKey.map { key throws(BillingError) in try IdempotencyKey(key) }
    }

    /// 0 means 50; above 200 is refused.
    static func pageSize(_ requested: UInt32) throws(BillingError) -> Int {
        if requested == 0 { return 50 }
        guard requested <= 200 else { throw .invalidArgument("page_size must be at most 200") }
        return Int(requested)
    }

    /// A payer of `accountID`; another account's payer is PERMISSION_DENIED.
    func payer(_ id: String, of accountID: String) async throws -> Payer {
        try IDs.check(id, "payer id")
        let payer = try await store.payer(id)
        guard payer.accountID == accountID else { throw BillingError.permissionDenied("payer \(id) belongs to another account") }
        return payer
    }

    /// A saved-method option must name a method of that payer's account.
    func checkOption(_ option: PaymentOption, accountID: String) async throws {
        guard case .savedMethod(let methodID) = option else { return }
        let method = try await store.paymentMethod(methodID)
        let owner = try await store.payer(method.payerID)
        guard owner.accountID == accountID else { throw BillingError.permissionDenied("payment method \(methodID) belongs to another account") }
    }
}
