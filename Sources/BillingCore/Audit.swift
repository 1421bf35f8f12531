/// Who made a change and through what, as the audit trail records it:
/// `who` is a certificate's principal (`internal/panel`, `account/acc_1`,
/// `operator/alice`), `poller`, `webhook:stripe`; `via` is the RPC method
/// (`/billing.v1.Balance/CreateTopUp`) or the trigger (`poll`,
/// `POST /webhooks/stripe`).
public struct AuditActor: Sendable, Hashable {
    public var who: String
    public var via: String

    public init(who: String, via: String) {
        self.who = who
        self.via = via
    }
}

/// One line of the audit trail: a change to one record, by whom and
/// through what. Append-only, written in the change's own transaction.
public struct AuditEntry: Sendable, Hashable {
    /// Whose account the entry belongs to, named directly or through the
    /// payer or payment it concerns (storage resolves the account).
    public enum Owner: Sendable, Hashable {
        case account(String)
        case payer(String)
        case payment(String)
    }

    public var owner: Owner
    public var paymentID: String?
    /// The record changed: an account, payer, payment, method, order or service id.
    public var subject: String
    /// What happened, as `record.verb`: `payment.created`, `payment.paid`,
    /// `ledger.credit`, `method.default`, `renewal_order.completed`, …
    public var action: String
    /// The change's particulars for people (amounts, statuses, reasons).
    public var detail: String
    public var who: String
    public var via: String
    public var atMs: Int64

    public init(
        owner: Owner,
        paymentID: String?,
        subject: String,
        action: String,
        detail: String,
        who: String,
        via: String,
        atMs: Int64
    ) {
        self.owner = owner
        self.paymentID = paymentID
        self.subject = subject
        self.action = action
        self.detail = detail
        self.who = who
        self.via = via
        self.atMs = atMs
    }
}

/// The audit trail: what each effect of a decision records, and who is
/// acting in the current task.
public enum Audit {
    /// Who acts in this task: the RPC layer sets it for each call from the
    /// caller's certificate, the poller and the webhooks for their work. A
    /// change made with none set is recorded as `billingd` through
    /// `unattributed`, which a test keeps from happening.
    @TaskLocal public static var actor = AuditActor(who: "billingd", via: "unattributed")

    /// The audit entries of a decision's effects, one per change to a
    /// record; notifications, events and idempotency records are
    /// consequences of those changes and record nothing of their own.
    public static func entries(_ effects: [Effect], by actor: AuditActor, atMs: Int64) -> [Effect] {
        effects.compactMap { effect in
            entry(effect).map { owner, paymentID, subject, action, detail in
                .audit(
                    AuditEntry(
                        owner: owner,
                        paymentID: paymentID,
                        subject: subject,
                        action: action,
                        detail: String(detail.prefix(500)),
                        who: actor.who,
                        via: actor.via,
                        atMs: atMs
                    )
                )
            }
        }
    }

    private static func entry(
        _ effect: Effect
    ) -> (AuditEntry.Owner, String?, String, String, String)? {
        switch effect {
        case .insertAccount(let account):
            return (.account(account.id), nil, account.id, "account.created", "\(account.currency.code)")
        case .insertPayer(let payer):
            return (.account(payer.accountID), nil, payer.id, "payer.created", "")
        case .insertPayment(let payment):
            var detail = "\(payment.purpose.rawValue) of \(payment.amount) by \(payment.optionKind.rawValue)"
            if let system = payment.system { detail += " (\(system.rawValue))" }
            if let method = payment.paymentMethodID { detail += " with method \(method)" }
            if let invoice = payment.invoiceNumber { detail += ", invoice \(invoice)" }
            return (.account(payment.accountID), payment.id, payment.id, "payment.created", detail)
        case .insertInvoice(let invoice):
            return (
                .account(invoice.accountID), invoice.paymentID, invoice.number, "invoice.issued",
                "\(invoice.amount) to \(invoice.payerName), due \(Timestamps.day(invoice.dueAtMs))"
            )
        case .attachReference(let paymentID, let reference, _, _):
            return (
                .payment(paymentID), paymentID, paymentID, "payment.started", "payment system reference \(reference)"
            )
        case .finishPayment(let payment):
            let detail = payment.failureReason.isEmpty ? "" : payment.failureReason
            return (
                .account(payment.accountID), payment.id, payment.id, "payment.\(payment.status.rawValue.lowercased())",
                detail
            )
        case .insertMethod(let method):
            return (
                .payer(method.payerID), method.savedWithPaymentID.isEmpty ? nil : method.savedWithPaymentID,
                method.id, "method.added", "\(method.system.rawValue) \(method.displayName), \(method.status.rawValue)"
            )
        case .updateMethod(let method, let expected):
            let detail =
                method.status == expected
                ? (method.isDefault ? "default" : "not default") : "\(expected.rawValue) → \(method.status.rawValue)"
            return (
                .payer(method.payerID), method.savedWithPaymentID.isEmpty ? nil : method.savedWithPaymentID,
                method.id, "method.updated", detail
            )
        case .ledger(let entry):
            let kind = entry.key.split(separator: ":").first.map(String.init) ?? "entry"
            return (
                .account(entry.accountID), entry.paymentID, entry.key, "ledger.\(kind)",
                "\(entry.amount) (\(entry.reference)); balance \(entry.balanceBefore) → \(entry.balanceAfter)"
            )
        case .insertRenewalOrder(let order):
            return (.account(order.accountID), order.paymentID, order.id, "renewal_order.created", "\(order.total)")
        case .updateRenewalOrder(let order, let expected):
            return (
                .account(order.accountID), order.paymentID, order.id, "renewal_order.updated",
                "\(expected.rawValue) → \(order.status.rawValue)"
            )
        case .saveService(let service):
            return (
                .account(service.accountID), nil, service.id, "service.saved",
                "\(service.pricePerPeriod) per \(service.periodDays) days, expires at \(Timestamps.minute(service.expiresAtMs)); "
                    + (service.autoRenewal.map {
                        "automatic renewal \($0.daysBefore) days before"
                            + ($0.payerID.map { ", payer \($0)" } ?? ", balance only")
                    } ?? "automatic renewal off")
            )
        case .autoRenewalAttempt(let service, let next, let outcome):
            let schedule = next.map { "; next attempt at \(Timestamps.minute($0))" } ?? ""
            return (.account(service.accountID), nil, service.id, "service.auto_renewal", outcome + schedule)
        case .insertMigrationOrder(let order):
            return (
                .account(order.accountID), order.paymentID, order.id, "migration_order.created", "\(order.serverPrice)"
            )
        case .updateMigrationOrder(let order, let expected):
            return (
                .account(order.accountID), order.paymentID, order.id, "migration_order.updated",
                "\(expected.rawValue) → \(order.status.rawValue)"
            )
        case .payerCustomer(let payerID, let system, let reference):
            return (.payer(payerID), nil, payerID, "payer.customer", "\(system.rawValue) \(reference)")
        case .insertNotification, .rememberKey, .event, .audit:
            return nil
        }
    }
}

/// An audit entry as stored: numbered in the order it was written, with
/// the account it belongs to.
public struct AuditRecord: Sendable, Hashable {
    /// Increasing in the order entries were written; a page's cursor.
    public var id: Int64
    public var accountID: String
    public var paymentID: String?
    public var subject: String
    public var action: String
    public var detail: String
    public var who: String
    public var via: String
    public var atMs: Int64

    public init(
        id: Int64,
        accountID: String,
        paymentID: String?,
        subject: String,
        action: String,
        detail: String,
        who: String,
        via: String,
        atMs: Int64
    ) {
        self.id = id
        self.accountID = accountID
        self.paymentID = paymentID
        self.subject = subject
        self.action = action
        self.detail = detail
        self.who = who
        self.via = via
        self.atMs = atMs
    }
}

/// Which part of an account's audit trail to read, oldest first.
public struct AuditQuery: Sendable, Hashable {
    public var accountID: String
    public var paymentID: String?
    /// Entries written at or after this time.
    public var sinceMs: Int64?
    /// Entries after this id (the previous page's last).
    public var afterID: Int64
    public var limit: Int

    public init(
        accountID: String,
        paymentID: String? = nil,
        sinceMs: Int64? = nil,
        afterID: Int64 = 0,
        limit: Int = 100
    ) {
        self.accountID = accountID
        self.paymentID = paymentID
        self.sinceMs = sinceMs
        self.afterID = afterID
        self.limit = limit
    }
}
