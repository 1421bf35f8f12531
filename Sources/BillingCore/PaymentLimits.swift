/// The amounts a payment system accepts in one currency, inclusive.
public struct AmountRange: Sendable, Hashable {
    public let minimum: Money
    public let maximum: Money

    public init(minimum: Money, maximum: Money) {
        precondition(
            minimum.currency == maximum.currency && minimum.amountMinorUnits > 0 && minimum <= maximum,
            "0 < minimum <= maximum"
        )
        self.minimum = minimum
        self.maximum = maximum
    }

    /// A range written in minor units of `currency`.
    static func minor(_ minimum: Int64, _ maximum: Int64, _ currency: Currency) -> AmountRange {
        AmountRange(minimum: Money(minorUnits: minimum, currency), maximum: Money(minorUnits: maximum, currency))
    }
}

/// What may be paid, in which currency and through which payment system: the
/// one rule every payment's amount is checked by, whatever its purpose.
///
/// - An account pays in one currency, and only a currency with a top-up
///   policy here can be an account's (so every account can be topped up, and
///   every error names the account's own currency).
/// - A top-up stays within its currency's policy (the seed's $0.50 to
///   $15,000.00 for USD).
/// - A payment through a payment system (a top-up, a renewal, a migration;
///   hosted or a saved method) stays within what that system accepts in that
///   currency: Stripe refuses less than its minimum charge, PayPal has its
///   per-transaction limits. A currency a system lacks is refused up front,
///   not by the system ten minutes later.
public struct PaymentLimits: Sendable, Hashable {
    public var defaultCurrency: Currency
    public var topUps: [Currency: TopUpPolicy]
    public var systems: [PaymentSystem: [Currency: AmountRange]]

    public init(
        defaultCurrency: Currency,
        topUps: [Currency: TopUpPolicy],
        systems: [PaymentSystem: [Currency: AmountRange]]
    ) {
        precondition(topUps[defaultCurrency] != nil, "the default currency has a top-up policy")
        self.defaultCurrency = defaultCurrency
        self.topUps = topUps
        self.systems = systems
    }

    /// The seed's: USD only, $0.50 to $15,000.00, and each system's own limits.
    public static let seedDefault = PaymentLimits(
        defaultCurrency: .usd,
        topUps: [.usd: .seedDefault],
        systems: Dictionary(uniqueKeysWithValues: PaymentSystem.allCases.map { ($0, PaymentLimits.defaults(for: $0)) })
    )

    /// Currencies accounts may be created in, sorted.
    public var currencies: [Currency] {
        topUps.keys.sorted { $0.code < $1.code }
    }

    /// - Throws: `invalidArgument` for a currency no account may use.
    public func checkAccountCurrency(_ currency: Currency) throws(BillingError) {
        guard topUps[currency] != nil else {
            throw .invalidArgument(
                "accounts are in \(currencies.map(\.code).joined(separator: ", ")) here, not \(currency)"
            )
        }
    }

    public func topUpPolicy(_ currency: Currency) throws(BillingError) -> TopUpPolicy {
        guard let policy = topUps[currency] else {
            throw .failedPrecondition(
                "payments in \(currency) are not offered here (configured: \(currencies.map(\.code).joined(separator: ", ")))"
            )
        }
        return policy
    }

    /// What `system` accepts in `currency`, or nil if it does not take it.
    public func range(_ system: PaymentSystem, _ currency: Currency) -> AmountRange? {
        systems[system]?[currency]
    }

    /// Checks a payment's amount before it is recorded.
    ///
    /// - Throws: `invalidArgument` for a top-up amount the person typed
    ///   outside a limit; `failedPrecondition` for an amount billingd worked
    ///   out (a renewal's, a migration's) that a system cannot take, and for a
    ///   currency not offered; each names the limit and the currency.
    public func check(_ amount: Money, purpose: PaymentPurpose, system: PaymentSystem?) throws(BillingError) {
        if purpose == .topUp { try topUpPolicy(amount.currency).check(amount) }
        guard let system else { return }
        guard let range = range(system, amount.currency) else {
            throw .failedPrecondition("\(system.displayName) does not take payments in \(amount.currency) here")
        }
        func refuse(_ why: String) -> BillingError {
            purpose == .topUp
                ? .invalidArgument(why) : .failedPrecondition(why + "; pay it from the balance or by invoice")
        }
        guard amount >= range.minimum else {
            throw refuse("\(amount) is below \(system.displayName)'s minimum of \(range.minimum)")
        }
        guard amount <= range.maximum else {
            throw refuse("\(amount) is above \(system.displayName)'s maximum of \(range.maximum)")
        }
    }

    /// Each system's own published limits, for the currencies it takes.
    /// - Stripe: its minimum charge per currency (about 0.50 USD; a
    ///   settlement account in another currency may need more: configure it),
    ///   and at most 99,999,999 minor units.
    /// - PayPal: from the smallest unit to 10,000 major units (its usual
    ///   per-transaction limit; accounts differ: configure it).
    /// - Sandbox: any known currency, 0.50 to 1,000,000 major units.
    public static func defaults(for system: PaymentSystem) -> [Currency: AmountRange] {
        func known(_ code: String) -> Currency? { Currency.known[code] }
        switch system {
        case .stripe:
            let minimums: [String: Int64] = [
                "USD": 50, "EUR": 50, "GBP": 30, "CHF": 50, "CAD": 50, "AUD": 50, "SEK": 300, "NOK": 300, "DKK": 250,
                "PLN": 200,
                "CZK": 1500, "JPY": 50,
            ]
            return Dictionary(
                uniqueKeysWithValues: minimums.compactMap { code, minimum in
                    known(code).map { ($0, AmountRange.minor(minimum, 99_999_999, $0)) }
                }
            )
        case .paypal:
            let codes = ["USD", "EUR", "GBP", "CHF", "CAD", "AUD", "SEK", "NOK", "DKK", "PLN", "CZK", "JPY"]
            return Dictionary(
                uniqueKeysWithValues: codes.compactMap(known).map { currency in
                    (currency, AmountRange.minor(1, 10_000 * currency.minorUnitsPerMajor, currency))
                }
            )
        case .sandbox:
            return Dictionary(
                uniqueKeysWithValues: Currency.known.values.map { currency in
                    (
                        currency,
                        AmountRange.minor(
                            max(1, currency.minorUnitsPerMajor / 2),
                            1_000_000 * currency.minorUnitsPerMajor,
                            currency
                        )
                    )
                }
            )
        }
    }
}
