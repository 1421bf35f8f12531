internal import BillingCore
internal import BillingRPC
internal import BillingStorage
internal import Logging

/// What every service needs, built once at start.
struct ServiceEnvironment: Sendable {
    let store: any BillingStore
    let flows: PaymentFlows
    /// Currencies, top-up limits, payment systems' limits (the store checks
    /// every payment against the same value).
    let limits: PaymentLimits
    let streams: EventStreams
    let reconciler: Reconciler
    let clock: any BillingClock
    let logger: Logger

    /// Runs a call's body, mapping every error to its RPC status in one place
    /// and logging the call with its request id. What the call changes is
    /// audited as its caller's (the certificate's principal) through its method.
    func call<T: Sendable>(_ context: ServerContext, _ body: (Authorization) async throws -> T) async throws -> T {
        var logger = self.logger
        logger[metadataKey: "method"] = "\(context.method)"
        if let requestID = context.requestID { logger[metadataKey: "request_id"] = "\(requestID.prefix(64))" }
        let auth = Authorization(context)
        let actor = AuditActor(who: auth.principal?.description ?? "no-role", via: "\(context.method)")
        do {
            return try await Audit.$actor.withValue(actor) { try await body(auth) }
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

    /// Loads what an id from outside names and checks the caller may use it
    /// (`access`). To an account-scoped caller, an unknown id and another
    /// account's id are the same PERMISSION_DENIED (`Authorization.notYours`);
    /// other callers get NOT_FOUND for an unknown id. Every service loads
    /// entities by id through here.
    func owned<Entity>(
        _ what: String,
        _ id: String,
        _ auth: Authorization,
        _ access: Authorization.Access,
        load: (String) async throws(BillingError) -> Entity,
        account: (Entity) async throws(BillingError) -> String
    ) async throws(BillingError) -> Entity {
        try IDs.check(id, "\(what) id")
        let entity: Entity
        let owner: String
        do {
            entity = try await load(id)
            owner = try await account(entity)
        } catch .notFound(let message) {
            if auth.ownAccount != nil { throw auth.notYours(what, id) }
            throw .notFound(message)
        }
        if let own = auth.ownAccount, own != owner { throw auth.notYours(what, id) }
        try auth.require(access, account: owner)
        return entity
    }

    /// A payer of `accountID` named inside a request for that account
    /// (already authorized): unknown and another account's are alike.
    func payer(_ id: String, of accountID: String, _ auth: Authorization) async throws(BillingError) -> Payer {
        let payer = try await owned(
            "payer",
            id,
            auth,
            .read,
            load: { id throws(BillingError) in try await store.payer(id) },
            account: { $0.accountID }
        )
        guard payer.accountID == accountID else {
            throw auth.ownAccount != nil ? auth.notYours("payer", id) : .notFound("payer \(id.prefix(64)) not found")
        }
        return payer
    }

    /// A saved-method option must name a method of a payer of that account.
    func checkOption(_ option: PaymentOption, accountID: String, _ auth: Authorization) async throws(BillingError) {
        guard case .savedMethod(let methodID) = option else { return }
        let method = try await owned(
            "payment method",
            methodID,
            auth,
            .read,
            load: { id throws(BillingError) in try await store.paymentMethod(id) },
            account: { method throws(BillingError) in try await store.payer(method.payerID).accountID }
        )
        guard try await store.payer(method.payerID).accountID == accountID else {
            throw auth.ownAccount != nil
                ? auth.notYours("payment method", methodID)
                : .notFound("payment method \(methodID.prefix(64)) not found")
        }
    }
}
