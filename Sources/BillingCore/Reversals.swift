/// The rules of money taken back from a Paid payment (a refund, a
/// chargeback) or given back (a dispute won), as its payment system reports
/// it. Each is recorded once, keyed by the payment system's id, as a ledger
/// entry of its own; the payment stays Paid and nothing is updated in place.
///
/// The balance may go below zero that way: the account then owes, and pays
/// nothing from its balance until a top-up covers it.
public enum Reversals {
    /// What the ledger already holds of one payment's reversals.
    public struct History: Sendable, Hashable {
        /// Whether this reversal's key is in the ledger already.
        public var recorded: Bool
        /// Minor units taken back so far (refunds and chargebacks, less disputes won).
        public var takenMinorUnits: Int64
        /// Minor units charged back and not yet given back by a dispute won.
        public var chargedBackMinorUnits: Int64

        public init(recorded: Bool, takenMinorUnits: Int64, chargedBackMinorUnits: Int64) {
            self.recorded = recorded
            self.takenMinorUnits = takenMinorUnits
            self.chargedBackMinorUnits = chargedBackMinorUnits
        }

        /// From the payment's reversal entries (`Reversals.key`, signed minor
        /// units) and whether this reversal's key is in the ledger at all (a
        /// key is unique across the whole ledger): what was taken back in
        /// all, and what chargebacks took less what disputes won gave back.
        ///
        /// - Throws: `storage` when stored amounts overflow (a damaged row is
        ///   an error for its call, never a trap).
        public init(recorded: Bool, entries: [(key: String, minorUnits: Int64)]) throws(BillingError) {
            func total(_ entries: [(key: String, minorUnits: Int64)]) throws(BillingError) -> Int64 {
                var sum: Int64 = 0
                for entry in entries {
                    let (next, overflow) = sum.addingReportingOverflow(entry.minorUnits)
                    guard !overflow, next != .min else { throw .storage("reversal amounts overflow", retryable: false) }
                    sum = next
                }
                return -sum
            }
            self.recorded = recorded
            takenMinorUnits = try total(entries)
            chargedBackMinorUnits = try total(
                entries.filter { entry in
                    let kind = entry.key.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false)
                        .dropFirst(2).first
                    return kind == Substring(Reversal.Kind.chargeback.rawValue)
                        || kind == Substring(Reversal.Kind.chargebackWon.rawValue)
                }
            )
        }
    }

    /// The ledger key of a reversal: one entry per payment-system reversal.
    public static func key(_ reversal: Reversal, system: PaymentSystem) -> String {
        "reversal:\(system.rawValue):\(reversal.kind.rawValue):\(reversal.reference)"
    }

    /// What is taken back never exceeds what the payment brought in, less
    /// what was taken back before (a confused answer from a payment system
    /// cannot debit more than it credited); what a dispute won gives back
    /// never exceeds what chargebacks took.
    ///
    /// - Returns: false (and no effects) when it was recorded before or
    ///   nothing is left to take or give back.
    /// - Throws: `failedPrecondition` for a payment that is not a Paid
    ///   payment-system payment, or an amount in another currency.
    public static func record(
        _ reversal: Reversal,
        payment: Payment,
        account: Account,
        balance: Money,
        history: History,
        now: Int64
    ) throws(BillingError) -> Change<Bool> {
        try Text.check(reversal.reference, "reversal reference", max: 200, required: true)
        try Text.check(reversal.reason, "reversal reason", max: 500)
        guard reversal.amount.amountMinorUnits > 0 else { throw .invalidArgument("a reversal amount is positive") }
        guard payment.status == .paid, let system = payment.system else {
            throw .failedPrecondition("payment \(payment.id) is \(payment.status), not a Paid payment-system payment")
        }
        guard reversal.amount.currency == payment.amount.currency else {
            throw .failedPrecondition(
                "a reversal in \(reversal.amount.currency) of a payment in \(payment.amount.currency)"
            )
        }
        if history.recorded { return Change(false) }
        let delta: Int64
        switch reversal.kind {
        case .refund, .chargeback:
            delta = -min(
                reversal.amount.amountMinorUnits,
                max(0, payment.amount.amountMinorUnits - history.takenMinorUnits)
            )
        case .chargebackWon:
            delta = min(reversal.amount.amountMinorUnits, max(0, history.chargedBackMinorUnits))
        }
        guard delta != 0 else { return Change(false) }
        let recorded = Reversal(
            paymentID: payment.id,
            kind: reversal.kind,
            amount: Money(minorUnits: abs(delta), payment.amount.currency),
            reference: reversal.reference,
            reason: reversal.reason
        )
        var list = EffectList(account: account, funds: Funds(balance: balance), now: now)
        try list.ledger(
            Money(minorUnits: delta, payment.amount.currency),
            key: key(reversal, system: system),
            paymentID: payment.id,
            reference: "\(reversal.kind.rawValue) \(reversal.reference) of payment \(payment.id)"
        )
        list.event(.paymentReversed(recorded))
        let reason = reversal.reason.isEmpty ? "" : ": \(reversal.reason)"
        switch reversal.kind {
        case .refund:
            list.notify(
                .info,
                "Payment refunded",
                "\(recorded.amount) of the payment of \(payment.amount) was refunded and taken from your balance\(reason)",
                paymentID: payment.id
            )
        case .chargeback:
            list.notify(
                .error,
                "Payment disputed",
                "\(recorded.amount) of the payment of \(payment.amount) was taken back by the payer's bank and from your balance\(reason)",
                paymentID: payment.id
            )
        case .chargebackWon:
            list.notify(
                .info,
                "Dispute resolved",
                "\(recorded.amount) taken back for the payment of \(payment.amount) was given back to your balance\(reason)",
                paymentID: payment.id
            )
        }
        return Change(true, list.effects)
    }
}
