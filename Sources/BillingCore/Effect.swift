/// One thing a decision of the domain writes. A decision returns its effects
/// in order; storage writes them all in one transaction, in that order, or
/// none (`BillingStore`'s unit of work). Events are effects of their own, so
/// what a change tells the watchers is decided here too, not by storage.
///
/// Each update carries the state it was decided on (`expected`, `before`):
/// storage writes it as a compare-and-set and refuses the whole transaction
/// when the record moved meanwhile. With SQLite's single writer, which
/// decides inside the write transaction, that never happens; a store with
/// several writers retries the decision.
public enum Effect: Sendable, Hashable {
    case insertAccount(Account)
    case insertPayer(Payer)

    /// A payment recorded New.
    case insertPayment(Payment)
    /// An invoice issued with its payment; its number the next of its series.
    case insertInvoice(Invoice)
    /// The payment system's id of a New payment and where to send the person.
    case attachReference(paymentID: String, reference: String, redirectURL: String, atMs: Int64)
    /// New → Paid or Cancelled: the record as it is after (status, reason,
    /// finish time); its poller schedule and lease end with it.
    case finishPayment(Payment)

    case insertMethod(PaymentMethod)
    /// A method's status, default mark, name or reference changed.
    case updateMethod(PaymentMethod, expected: PaymentMethodStatus)

    /// A ledger entry (unique by key) and the account's balance moved from
    /// `balanceBefore` to `balanceAfter` with it.
    case ledger(LedgerEntry)

    case insertRenewalOrder(RenewalOrder)
    /// Status, completion time, payment and lines' new expiries.
    case updateRenewalOrder(RenewalOrder, expected: RenewalOrder.Status)
    /// A service created or changed (price, period, expiry, automatic renewal).
    case saveService(RenewableService)
    /// An automatic renewal attempt of a service: when the next one is due
    /// (nil: when its window opens) and what this one did, for the audit trail.
    case autoRenewalAttempt(RenewableService, nextAttemptAtMs: Int64?, outcome: String)

    case insertMigrationOrder(MigrationOrder)
    case updateMigrationOrder(MigrationOrder, expected: MigrationOrder.Status)

    case insertNotification(Notification)
    /// A payer's customer at a payment system (the first one recorded wins).
    case payerCustomer(payerID: String, system: PaymentSystem, reference: String)
    /// An idempotency key and the result it stands for (replacing an expired one).
    case rememberKey(IdempotencyRecord)

    /// Appended to the log with the next global and account sequence.
    case event(accountID: String, atMs: Int64, Event.Change)
    /// A line of the audit trail (`Audit.entries`), append-only.
    case audit(AuditEntry)
}

/// One entry of an account's ledger, with the balance it moves. The entry
/// key makes it unique: "credit:<payment>" (a Paid payment), "debit:<order>"
/// (an order paid from the balance), "reversal:<system>:<kind>:<reference>".
public struct LedgerEntry: Sendable, Hashable {
    public var accountID: String
    public var key: String
    /// Positive credits, negative debits.
    public var amount: Money
    public var paymentID: String?
    /// For people reading the ledger: "payment pay_…", "renewal order ro_…".
    public var reference: String
    public var atMs: Int64
    public var balanceBefore: Money
    public var balanceAfter: Money

    public init(
        accountID: String,
        key: String,
        amount: Money,
        paymentID: String?,
        reference: String,
        atMs: Int64,
        balanceBefore: Money,
        balanceAfter: Money
    ) {
        self.accountID = accountID
        self.key = key
        self.amount = amount
        self.paymentID = paymentID
        self.reference = reference
        self.atMs = atMs
        self.balanceBefore = balanceBefore
        self.balanceAfter = balanceAfter
    }
}

/// What a decision returns: its result and the effects that make it true.
public struct Change<Result: Sendable>: Sendable {
    public var result: Result
    public var effects: [Effect]

    public init(_ result: Result, _ effects: [Effect] = []) {
        self.result = result
        self.effects = effects
    }
}

/// Builds a decision's effects in order, keeping the account's funds as they
/// move, so a debit after a credit sees the credit and no debit spends what
/// is held for a renewal awaiting its payment.
struct EffectList {
    private(set) var effects: [Effect] = []
    private(set) var funds: Funds
    let account: Account
    let now: Int64

    init(account: Account, funds: Funds, now: Int64) {
        self.account = account
        self.funds = funds
        self.now = now
    }

    var balance: Money { funds.balance }

    mutating func append(_ effect: Effect) {
        effects.append(effect)
    }

    mutating func event(_ change: Event.Change) {
        effects.append(.event(accountID: account.id, atMs: now, change))
    }

    /// A ledger entry and its balance event.
    ///
    /// - Throws: `failedPrecondition` if the balance would overflow.
    mutating func ledger(_ amount: Money, key: String, paymentID: String?, reference: String) throws(BillingError) {
        let after: Money
        do {
            after = try funds.balance.adding(amount)
        } catch {
            throw .failedPrecondition("balance would overflow")
        }
        effects.append(
            .ledger(
                LedgerEntry(
                    accountID: account.id,
                    key: key,
                    amount: amount,
                    paymentID: paymentID,
                    reference: reference,
                    atMs: now,
                    balanceBefore: funds.balance,
                    balanceAfter: after
                )
            )
        )
        funds.balance = after
        event(.balanceChanged(balance: after, delta: amount, paymentID: paymentID, reference: reference))
    }

    /// Whether the available funds, with `hold` given back, cover `amount`.
    func covers(_ amount: Money, releasing hold: Money?) -> Bool {
        let (sum, overflow) = funds.available.amountMinorUnits.addingReportingOverflow(hold?.amountMinorUnits ?? 0)
        return overflow || sum >= amount.amountMinorUnits
    }

    /// A debit the available funds must cover; `hold` is what the debited
    /// order itself held, given back by it.
    ///
    /// - Throws: `insufficientFunds` when they do not.
    mutating func debit(
        _ amount: Money,
        key: String,
        reference: String,
        releasing hold: Money? = nil
    ) throws(BillingError) {
        guard covers(amount, releasing: hold) else {
            throw .insufficientFunds(available: funds.available, required: amount)
        }
        if let hold { release(hold) }
        try ledger(amount.negated, key: key, paymentID: nil, reference: reference)
    }

    /// Part of the balance set aside for an order awaiting its payment.
    mutating func hold(_ amount: Money) throws(BillingError) {
        funds.held = try funds.held.adding(amount)
    }

    /// An order's hold given back (completed, or cancelled).
    mutating func release(_ amount: Money) {
        funds.held = (try? funds.held.subtracting(amount)) ?? funds.held
    }

    mutating func notify(_ severity: Notification.Severity, _ title: String, _ body: String, paymentID: String?) {
        let notification = Notification(
            id: IDs.make("ntf"),
            accountID: account.id,
            severity: severity,
            title: title,
            body: body,
            paymentID: paymentID,
            createdAtMs: now
        )
        effects.append(.insertNotification(notification))
        event(.notification(notification))
    }
}
