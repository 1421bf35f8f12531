/// An account's money as decisions see it: the balance (the sum of its
/// ledger) and the part of it held for renewal orders awaiting their payment
/// (each order's `fromBalance`). Only what is available may be spent: a
/// renewal paid partly from the balance keeps its part until its payment
/// ends, so nothing else spends it meanwhile; no ledger entry is written for
/// a hold.
public struct Funds: Sendable, Hashable {
    public var balance: Money
    public var held: Money

    public init(balance: Money, held: Money) {
        precondition(balance.currency == held.currency, "one currency")
        self.balance = balance
        self.held = held
    }

    /// Nothing held.
    public init(balance: Money) {
        self.init(balance: balance, held: .zero(balance.currency))
    }

    /// The balance less what is held; below zero when the account owes
    /// (a chargeback after the hold).
    public var available: Money {
        let (difference, overflow) = balance.amountMinorUnits.subtractingReportingOverflow(held.amountMinorUnits)
        return Money(minorUnits: overflow ? .min : difference, balance.currency)
    }

    /// What a payment may use of it: the available funds, zero when none.
    public var spendable: Money {
        Money(minorUnits: max(0, available.amountMinorUnits), balance.currency)
    }
}
