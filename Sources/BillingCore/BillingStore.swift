/// What the server needs from storage, and all it may ask. Each method is one
/// transaction: it commits whole or not at all, with the events it implies.
/// `SQLiteStore` implements it; a PostgreSQL store would implement the same,
/// and the server and poller only ever see this protocol.
///
/// An implementation is persistence only. A method that changes anything
/// reads the records the decision needs (each once), calls the decision of
/// this module (`PaymentMachine`, `Renewals`, `MigrationOrders`,
/// `SavedMethods`, `Reversals`, `Accounts`, `Idempotency`) and writes the
/// effects it returns (`Effect`) in the same transaction, each update a
/// compare-and-set on what was read. No rule of money, no notification text
/// and no check of input lives in a store: these are all here, shared by
/// every backend.
///
/// Every method throws `BillingError` only.
public protocol BillingStore: Sendable {
    /// Bumped after every commit; streams and the poller wait on it.
    var commits: CommitSignal { get }

    /// The whole database checked (operators): the engine's own check, each
    /// balance against its ledger, the event log gap-free.
    func checkStorage() async throws(BillingError) -> (accounts: Int, problems: [String])

    // Accounts and payers
    func createAccount(id: String, displayName: String, currency: Currency) async throws(BillingError) -> Account
    func account(_ id: String) async throws(BillingError) -> Account
    func createPayer(accountID: String, displayName: String, email: String) async throws(BillingError) -> Payer
    func payers(accountID: String) async throws(BillingError) -> [Payer]
    func payer(_ id: String) async throws(BillingError) -> Payer

    // Balance and holds; the sequence is the account's own (`Event.accountSequence`).
    func balance(accountID: String) async throws(BillingError) -> (funds: Funds, asOfSequence: UInt64)

    // Payment methods
    func paymentMethods(payerID: String, includeRemoved: Bool) async throws(BillingError) -> [PaymentMethod]
    func paymentMethod(_ id: String) async throws(BillingError) -> PaymentMethod
    func setDefaultMethod(_ id: String) async throws(BillingError) -> PaymentMethod
    func removeMethod(_ id: String) async throws(BillingError) -> PaymentMethod
    /// A Pending method of a Paid payment confirmed when its reference comes late.
    func confirmLateMethod(
        paymentReference: String,
        system: PaymentSystem,
        methodReference: String,
        displayName: String
    ) async throws(BillingError) -> Bool
    /// A payer's customer at a payment system, made once and reused.
    func payerCustomer(payerID: String, system: PaymentSystem) async throws(BillingError) -> String?
    func setPayerCustomer(payerID: String, system: PaymentSystem, reference: String) async throws(BillingError)
    /// Pending methods of payments Paid before the cutoff end Failed.
    func failStalePendingMethods(paidBeforeMs cutoffMs: Int64) async throws(BillingError) -> Int

    // Payments
    func createTopUp(_ request: TopUpRequest, idempotencyKey: IdempotencyKey?) async throws(BillingError) -> Payment
    func payment(_ id: String) async throws(BillingError) -> Payment
    /// An invoice and its payment, by the invoice's number or its payment's id.
    func invoiceDocument(_ numberOrPaymentID: String) async throws(BillingError) -> InvoiceDocument
    func attachProviderReference(
        paymentID: String,
        reference: String,
        redirectURL: String
    ) async throws(BillingError) -> Payment
    func transition(paymentID: String, _ outcome: TransitionOutcome) async throws(BillingError) -> TransitionResult
    /// A refund, chargeback or dispute won of a Paid payment, once per its
    /// reference; false when it was recorded before.
    func recordReversal(_ reversal: Reversal) async throws(BillingError) -> Bool
    func listPayments(_ query: PaymentQuery) async throws(BillingError) -> Page<Payment>
    /// Of one account: after its account sequence; of all (nil): after the global sequence.
    func events(after sequence: UInt64, accountID: String?, limit: Int) async throws(BillingError) -> [Event]
    func notifications(
        accountID: String,
        pageSize: Int,
        pageToken: String?
    ) async throws(BillingError) -> Page<Notification>

    // Poller and streams
    /// Claims up to `limit` due New payments for `owner` for `lease`,
    /// leaving out those of the systems in `excluding`.
    func claimDuePayments(
        owner: String,
        limit: Int,
        lease: Duration,
        excluding systems: Set<PaymentSystem>
    ) async throws(BillingError) -> [Payment]
    func recordCheck(paymentID: String, owner: String, nextCheckAtMs: Int64?) async throws(BillingError)
    /// Gives back claims of `owner` it will not check (it is stopping, or
    /// kept them waiting too long), so that another poller need not wait for
    /// their leases to run out.
    func releaseClaims(paymentIDs: [String], owner: String) async throws(BillingError)
    /// Extends `owner`'s claim of a payment it is checking to `lease` from
    /// now, so a check that takes long is not taken over by another poller;
    /// false when the claim is no longer `owner`'s (or the payment left New).
    func renewClaim(paymentID: String, owner: String, lease: Duration) async throws(BillingError) -> Bool
    func nextCheckDue() async throws(BillingError) -> Int64?
    func pollerBacklog() async throws(BillingError) -> (due: Int, oldestDueMs: Int64?)
    func latestSequence() async throws(BillingError) -> UInt64
    /// Reconciliation's reads: payments of a system in a period, our payers'
    /// customers there, the methods we hold usable there.
    func paymentsToReconcile(
        system: PaymentSystem,
        fromMs: Int64,
        toMs: Int64,
        limit: Int
    ) async throws(BillingError)
        -> [Payment]
    func customers(system: PaymentSystem, payerIDs: Set<String>) async throws(BillingError) -> [String]
    func usableMethodReferences(system: PaymentSystem) async throws(BillingError) -> Set<String>
    /// A page of an account's audit trail, oldest first.
    func auditTrail(_ query: AuditQuery) async throws(BillingError) -> [AuditRecord]
    func eventBacklog(after sequence: UInt64, accountID: String?) async throws(BillingError) -> Int

    // Renewals
    func upsertRenewableService(
        _ service: RenewableService,
        keepingAutoRenewal: Bool
    ) async throws(BillingError) -> RenewableService
    func setAutoRenewal(
        accountID: String,
        serviceID: String,
        _ auto: AutoRenewal?
    ) async throws(BillingError) -> RenewableService
    func dueAutoRenewals(limit: Int) async throws(BillingError) -> [String]
    func attemptAutoRenewal(serviceID: String, retry: Duration) async throws(BillingError) -> AutoRenewals.Attempt
    func renewableServices(accountID: String) async throws(BillingError) -> [RenewableService]
    /// Prices a renewal and splits it between the available balance and a
    /// payment by `option` (nil: not chosen yet).
    func quoteRenewal(
        accountID: String,
        items: [RenewalItem],
        option: PaymentOption?
    ) async throws(BillingError) -> RenewalQuote
    func renew(
        accountID: String,
        payerID: String?,
        items: [RenewalItem],
        option: PaymentOption,
        expectedTotal: Money?,
        expectedToPay: Money?,
        idempotencyKey: IdempotencyKey?
    ) async throws(BillingError) -> (order: RenewalOrder, payment: Payment?)
    func renewalOrder(_ id: String) async throws(BillingError) -> RenewalOrder

    // Migrations
    func createMigrationOrder(
        accountID: String,
        externalID: String,
        description: String,
        serverPrice: Money
    ) async throws(BillingError) -> MigrationOrder
    func migrationOrder(_ id: String) async throws(BillingError) -> MigrationOrder
    func payMigrationOrder(
        _ orderID: String,
        payerID: String?,
        option: PaymentOption,
        idempotencyKey: IdempotencyKey?
    ) async throws(BillingError) -> (order: MigrationOrder, payment: Payment?)
}

extension BillingStore {
    /// Claims up to `limit` due New payments of any system.
    public func claimDuePayments(owner: String, limit: Int, lease: Duration) async throws(BillingError) -> [Payment] {
        try await claimDuePayments(owner: owner, limit: limit, lease: lease, excluding: [])
    }
}
