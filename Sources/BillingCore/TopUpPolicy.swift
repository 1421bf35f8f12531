/// The seed page's rules for a top-up amount. The defaults are the page's:
/// $0.50 to $15,000.00 inclusive, presets $100, $200, $500, $1000.
public struct TopUpPolicy: Sendable, Hashable {
    public var minimum: Money
    public var maximum: Money
    public var presets: [Money]

    public init(minimum: Money, maximum: Money, presets: [Money]) {
        precondition(minimum.currency == maximum.currency, "limits in one currency")
        precondition(
            minimum.amountMinorUnits > 0 && minimum.amountMinorUnits <= maximum.amountMinorUnits,
            "0 < minimum <= maximum"
        )
        precondition(
            presets.allSatisfy { $0.currency == minimum.currency && $0 >= minimum && $0 <= maximum },
            "presets within the limits"
        )
        self.minimum = minimum
        self.maximum = maximum
        self.presets = presets
    }

    public static let seedDefault = TopUpPolicy(
        minimum: Money(minorUnits: 50, .usd),
        maximum: Money(minorUnits: 15_000_00, .usd),
        presets: [100_00, 200_00, 500_00, 1000_00].map { Money(minorUnits: $0, .usd) }
    )

    /// - Throws: `BillingError.invalidArgument` naming the limit that is broken.
    public func check(_ amount: Money) throws(BillingError) {
        guard amount.currency == minimum.currency else {
            throw .invalidArgument("top-ups are in \(minimum.currency), not \(amount.currency)")
        }
        guard amount >= minimum else {
            throw .invalidArgument("amount \(amount) is below the minimum of \(minimum)")
        }
        guard amount <= maximum else {
            throw .invalidArgument("amount \(amount) is above the maximum of \(maximum)")
        }
    }
}

extension Money: Comparable {
    /// Only amounts of one currency compare; comparing two is a programmer error.
    public static func < (lhs: Money, rhs: Money) -> Bool {
        precondition(lhs.currency == rhs.currency, "comparing \(lhs.currency) with \(rhs.currency)")
        return lhs.amountMinorUnits < rhs.amountMinorUnits
    }
}
