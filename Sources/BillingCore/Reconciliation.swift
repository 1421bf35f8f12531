/// Our books against a payment system's: what each side holds for the same
/// payments, and every way they disagree. Reconciliation only reads; a
/// disagreement is for an operator to look into, never corrected here.
public enum Reconciliation {
    /// What a payment system holds for a payment, read without changing it.
    public struct Record: Sendable, Hashable {
        public enum State: String, Sendable {
            /// The money was taken (captured, succeeded, approved).
            case paid
            /// Not decided yet (a page open, a debit processing, an order approved but not captured).
            case open
            /// Declined, expired, cancelled or voided.
            case failed
        }

        /// Our payment id, when the record names one (Stripe's metadata, the sandbox's record).
        public var paymentID: String?
        /// The payment system's own id.
        public var reference: String
        public var state: State
        /// As the payment system says it, in minor units; nil when it did not say.
        public var amountMinorUnits: Int64?
        /// ISO 4217, upper case; nil when it did not say.
        public var currency: String?

        public init(
            paymentID: String?,
            reference: String,
            state: State,
            amountMinorUnits: Int64?,
            currency: String?
        ) {
            self.paymentID = paymentID
            self.reference = reference
            self.state = state
            self.amountMinorUnits = amountMinorUnits
            self.currency = currency?.uppercased()
        }
    }

    public struct Disagreement: Sendable, Hashable {
        public enum Kind: String, Sendable, CaseIterable {
            /// Paid (credited) here; not paid at the payment system, or unknown there.
            case paidHereNotThere = "paid_here_not_there"
            /// Paid at the payment system; New or Cancelled here.
            case paidThereNotHere = "paid_there_not_here"
            /// Paid on both sides, for different amounts or currencies.
            case amountDiffers = "amount_differs"
            /// Money the payment system took naming a payment billingd has no record of.
            case unknownHere = "captured_there_unknown_here"
            /// A method saved for one of our payers there that billingd does not hold (or removed).
            case methodNotHere = "method_saved_there_not_here"
        }

        public var kind: Kind
        public var system: PaymentSystem
        /// Ours, when there is one.
        public var paymentID: String?
        /// The payment system's id (a session, intent, order or method).
        public var reference: String
        /// What each side says, for people.
        public var here: String
        public var there: String

        public init(
            kind: Kind,
            system: PaymentSystem,
            paymentID: String?,
            reference: String,
            here: String,
            there: String
        ) {
            self.kind = kind
            self.system = system
            self.paymentID = paymentID
            self.reference = reference
            self.here = here
            self.there = there
        }
    }

    /// One of our payments against what its payment system holds for it
    /// (nil: nothing). A payment still New here and open there agrees; so
    /// does a Cancelled one that was never paid there.
    public static func compare(_ payment: Payment, _ theirs: Record?, system: PaymentSystem) -> Disagreement? {
        func disagreement(_ kind: Disagreement.Kind, there: String) -> Disagreement {
            Disagreement(
                kind: kind,
                system: system,
                paymentID: payment.id,
                reference: theirs?.reference ?? payment.providerReference,
                here: "\(payment.status) \(payment.amount)",
                there: there
            )
        }
        guard let theirs else {
            return payment.status == .paid ? disagreement(.paidHereNotThere, there: "no such payment") : nil
        }
        let there = describe(theirs)
        switch (payment.status, theirs.state) {
        case (.paid, .paid):
            let amountDiffers = theirs.amountMinorUnits.map { $0 != payment.amount.amountMinorUnits } ?? false
            let currencyDiffers = theirs.currency.map { $0 != payment.amount.currency.code } ?? false
            return amountDiffers || currencyDiffers ? disagreement(.amountDiffers, there: there) : nil
        case (.paid, _):
            return disagreement(.paidHereNotThere, there: there)
        case (_, .paid):
            return disagreement(.paidThereNotHere, there: there)
        default:
            return nil
        }
    }

    /// Everything a payment system took naming one payment id, against our
    /// payment of that id (nil: none). Money taken for a payment we do not
    /// hold, or hold under another system, is unknown here; taken for one
    /// not Paid here, paid there not here; taken more than once, or for
    /// another total or currency, an amount that differs.
    public static func taken(_ records: [Record], for payment: Payment?, system: PaymentSystem) -> Disagreement? {
        guard let first = records.first else { return nil }
        let references = records.map(\.reference).joined(separator: ", ")
        let amounts = records.compactMap(\.amountMinorUnits)
        let currencies = Set(records.compactMap(\.currency))
        let (total, overflow) = amounts.reduce((Int64(0), false)) { sum, next in
            let (added, overflowed) = sum.0.addingReportingOverflow(next)
            return (added, sum.1 || overflowed)
        }
        var there = records.count == 1 ? describe(first) : "taken \(records.count) times"
        if records.count > 1, amounts.count == records.count, !overflow {
            there += ", \(total) minor units in all \(currencies.sorted().joined(separator: "+"))"
        }
        func disagreement(_ kind: Disagreement.Kind, here: String) -> Disagreement {
            Disagreement(
                kind: kind,
                system: system,
                paymentID: first.paymentID,
                reference: references,
                here: here,
                there: there
            )
        }
        guard let payment, payment.system == system else {
            let here = payment.map {
                "a \($0.system?.rawValue ?? $0.optionKind.rawValue) payment, \($0.status) \($0.amount)"
            }
            return disagreement(.unknownHere, here: here ?? "no such payment")
        }
        let here = "\(payment.status) \(payment.amount)"
        guard payment.status == .paid else { return disagreement(.paidThereNotHere, here: here) }
        let sameTotal = amounts.count < records.count || (!overflow && total == payment.amount.amountMinorUnits)
        let sameCurrency = currencies.isEmpty || currencies == [payment.amount.currency.code]
        return records.count > 1 || !sameTotal || !sameCurrency ? disagreement(.amountDiffers, here: here) : nil
    }

    /// Methods saved at a payment system for our payers that billingd holds
    /// as neither Pending nor Confirmed.
    public static func methodsNotHere(
        there: [String],
        here: Set<String>,
        system: PaymentSystem
    ) -> [Disagreement] {
        there.filter { !here.contains($0) }.map { reference in
            Disagreement(
                kind: .methodNotHere,
                system: system,
                paymentID: nil,
                reference: reference,
                here: "no usable method with this reference",
                there: "saved"
            )
        }
    }

    static func describe(_ record: Record) -> String {
        var text = record.state.rawValue
        if let minor = record.amountMinorUnits { text += " \(minor) minor units" }
        if let currency = record.currency { text += " \(currency)" }
        return text
    }
}
