public import BillingCore
internal import GRDB

extension SQLiteStore {
    /// Records money taken back from a Paid payment (a refund, a chargeback)
    /// or given back (a dispute won) in one transaction: its own ledger entry
    /// under a unique key per payment-system reversal ("reversal:<system>:<id>"),
    /// the cached balance (which may go below zero: the account then owes, and
    /// pays nothing from its balance until a top-up covers it), an event and
    /// a notification. The payment itself stays Paid: nothing is updated in
    /// place.
    ///
    /// What is taken back never exceeds what the payment brought in, less what
    /// was taken back before (a confused answer from a payment system cannot
    /// debit more than it credited); what a dispute won gives back never
    /// exceeds what chargebacks took.
    ///
    /// - Returns: false when this reversal was recorded before (nothing changes).
    /// - Throws: `failedPrecondition` for a payment that is not Paid or an
    ///   amount in another currency; `notFound`.
    public func recordReversal(_ reversal: Reversal) async throws(BillingError) -> Bool {
        try Text.check(reversal.reference, "reversal reference", max: 200, required: true)
        try Text.check(reversal.reason, "reversal reason", max: 500)
        guard reversal.amount.amountMinorUnits > 0 else { throw .invalidArgument("a reversal amount is positive") }
        let now = clock()
        return try await write { db in
            let payment = try Self.requirePayment(db, reversal.paymentID)
            guard payment.status == .paid, let system = payment.system else {
                throw BillingError.failedPrecondition("payment \(payment.id) is \(payment.status), not a Paid payment-system payment")
            }
            guard reversal.amount.currency == payment.amount.currency else {
                throw BillingError.failedPrecondition("a reversal in \(reversal.amount.currency) of a payment in \(payment.amount.currency)")
            }
            let key = "reversal:\(system.rawValue):\(reversal.kind.rawValue):\(reversal.reference)"
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM ledger WHERE entry_key = ?", arguments: [key]) == true { return false }
            let account = try Self.requireAccount(db, payment.accountID)
            let taken = try Int64.fetchOne(db, sql: """
                SELECT COALESCE(-SUM(amount_minor), 0) FROM ledger WHERE payment_id = ? AND entry_key LIKE 'reversal:%'
                """, arguments: [payment.id]) ?? 0
            // Chargebacks not yet given back by a dispute won.
            let chargedBack = try Int64.fetchOne(db, sql: """
                SELECT COALESCE(-SUM(amount_minor), 0) FROM ledger WHERE payment_id = ?
                  AND (entry_key LIKE 'reversal:%:chargeback:%' OR entry_key LIKE 'reversal:%:chargeback_won:%')
                """, arguments: [payment.id]) ?? 0
            let delta: Int64
            switch reversal.kind {
            case .refund, .chargeback:
                delta = -min(reversal.amount.amountMinorUnits, max(0, payment.amount.amountMinorUnits - taken))
            case .chargebackWon:
                delta = min(reversal.amount.amountMinorUnits, max(0, chargedBack))
            }
            guard delta != 0 else { return false }
            let recorded = Reversal(paymentID: payment.id, kind: reversal.kind, amount: Money(minorUnits: abs(delta), payment.amount.currency),
                                    reference: reversal.reference, reason: reversal.reason)
            try Self.appendLedger(db, account: account, deltaMinor: delta, entryKey: key, paymentID: payment.id,
                             reference: "\(reversal.kind.rawValue) \(reversal.reference) of payment \(payment.id)", atMs: now)
            try Self.appendEvent(db, accountID: account.id, atMs: now, .paymentReversed(recorded))
            let reason = reversal.reason.isEmpty ? "" : ": \(reversal.reason)"
            let (severity, title, body): (Notification.Severity, String, String) = switch reversal.kind {
            case .refund: (.info, "Payment refunded", "\(recorded.amount) of the payment of \(payment.amount) was refunded and taken from your balance\(reason)")
            case .chargeback: (.error, "Payment disputed", "\(recorded.amount) of the payment of \(payment.amount) was taken back by the payer's bank and from your balance\(reason)")
            case .chargebackWon: (.info, "Dispute resolved", "\(recorded.amount) taken back for the payment of \(payment.amount) was given back to your balance\(reason)")
            }
            let notification = Notification(id: IDs.make("ntf"), accountID: account.id, severity: severity, title: title, body: body,
                                            paymentID: payment.id, createdAtMs: now)
            try Self.insertNotification(db, notification)
            try Self.appendEvent(db, accountID: account.id, atMs: now, .notification(notification))
            return true
        }
    }
}
