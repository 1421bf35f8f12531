internal import BillingAPI
internal import BillingCore
internal import BillingRPC
internal import BillingTransport

/// Every call's authorization, in one place. Roles come from the caller's
/// certificate (`Principal`, docs/PROTOCOL.md):
/// - internal services may act on any account;
/// - account-scoped clients only on their own account: another account's
///   anything is PERMISSION_DENIED, whatever id is guessed;
/// - operators may read any account and settle or cancel invoices, but do not
///   spend a customer's money.
struct Authorization {
    let principal: Principal?

    init(_ context: ServerContext) {
        principal = Principal(peer: context.peer)
    }

    enum Access {
        /// Reading: balances, payments, methods, orders.
        case read
        /// Acting for the account: top-ups, renewals, paying orders, methods.
        case act
    }

    /// Internal services and operators may use the connections kept for
    /// them; account-scoped clients and certificates with no role may not.
    @Sendable static func connectionClass(_ peer: PeerIdentity) -> ConnectionAdmission.PeerClass {
        switch Principal(peer: peer)?.role {
        case .internalService?, .operator?: return .privileged
        case .account?, nil: return .ordinary
        }
    }

    /// May the caller see or act on `accountID`?
    func require(_ access: Access, account accountID: String) throws(BillingError) {
        guard let principal else { throw .permissionDenied("the client certificate names no billing role") }
        switch principal.role {
        case .internalService:
            return
        case .account(let own):
            guard own == accountID else { throw .permissionDenied("this client may only use account \(own)") }
        case .operator:
            guard access == .read else {
                throw .permissionDenied("operators do not act for an account; use an internal or account client")
            }
        }
    }

    /// The one account an account-scoped caller may use; nil for others.
    var ownAccount: String? {
        if case .account(let own)? = principal?.role { return own }
        return nil
    }

    /// What an account-scoped caller hears for an id that does not exist and
    /// for one of another account alike: one status, one message, so that
    /// guessing ids tells it nothing (not even that they exist).
    func notYours(_ what: String, _ id: String) -> BillingError {
        .permissionDenied("\(what) \(id.prefix(64)) is not one of account \(ownAccount ?? "")")
    }

    func requireInternal(_ what: String) throws(BillingError) {
        guard case .internalService? = principal?.role else {
            throw .permissionDenied("\(what) is for internal services")
        }
    }

    func requireOperator(_ what: String) throws(BillingError) {
        guard case .operator? = principal?.role else {
            throw .permissionDenied("\(what) is for operators")
        }
    }

    /// Internal services and operators: views across all accounts.
    func requireInternalOrOperator(_ what: String) throws(BillingError) {
        switch principal?.role {
        case .internalService?, .operator?: return
        default: throw .permissionDenied("\(what) is for internal services and operators")
        }
    }
}
