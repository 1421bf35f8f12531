/// An amount of money: integer minor units and a currency. There is no
/// floating point anywhere on the way in or out; arithmetic that would
/// overflow `Int64` throws instead of wrapping.
public struct Money: Sendable, Hashable, Codable, CustomStringConvertible {
    public let amountMinorUnits: Int64
    public let currency: Currency

    public init(minorUnits: Int64, _ currency: Currency) {
        self.amountMinorUnits = minorUnits
        self.currency = currency
    }

    public static func zero(_ currency: Currency) -> Money {
        Money(minorUnits: 0, currency)
    }

    /// Parses an amount as a person types it: "100", "100.5", "0.50",
    /// "15000.00", "-3.20". At most `currency.minorUnitDigits` decimals; no
    /// signs but a leading "-", no thousands separators, no currency symbols,
    /// no exponent. Surrounding spaces are ignored.
    ///
    /// - Throws: `BillingError.invalidArgument` saying what is wrong.
    public init(parsing text: String, _ currency: Currency) throws(BillingError) {
        let trimmed = text.trimmingSpaces()
        guard !trimmed.isEmpty else { throw .invalidArgument("amount is empty") }
        guard trimmed.utf8.count <= 32 else { throw .invalidArgument("amount is too long") }
        var bytes = Array(trimmed.utf8)
        let negative = bytes.first == UInt8(ascii: "-")
        if negative { bytes.removeFirst() }
        let notANumber = BillingError.invalidArgument("amount \"\(trimmed)\" is not a number like 100 or 100.50")
        let parts = bytes.split(separator: UInt8(ascii: "."), maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count <= 2, let whole = parts.first, !whole.isEmpty else { throw notANumber }
        let fraction = parts.count == 2 ? Array(parts[1]) : []
        guard parts.count == 1 || !fraction.isEmpty else { throw notANumber }
        guard (whole + fraction).allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw notANumber
        }
        guard fraction.count <= currency.minorUnitDigits else {
            throw .invalidArgument(
                "amount \"\(trimmed)\" has more than \(currency.minorUnitDigits) decimals for \(currency)"
            )
        }
        var minor: Int64 = 0
        let padded =
            Array(whole) + Array(fraction)
            + Array(repeating: UInt8(ascii: "0"), count: currency.minorUnitDigits - fraction.count)
        for digit in padded {
            let (times10, o1) = minor.multipliedReportingOverflow(by: 10)
            let (plus, o2) = times10.addingReportingOverflow(Int64(digit - UInt8(ascii: "0")))
            guard !o1, !o2 else { throw .invalidArgument("amount \"\(trimmed)\" is too large") }
            minor = plus
        }
        self.init(minorUnits: negative ? -minor : minor, currency)
    }

    /// "100.50", "0.05", "-3.20", "1500" for JPY: the exact value, no grouping.
    public var formatted: String {
        let digits = currency.minorUnitDigits
        let magnitude = amountMinorUnits.magnitude
        let per = UInt64(currency.minorUnitsPerMajor)
        let sign = amountMinorUnits < 0 ? "-" : ""
        guard digits > 0 else { return sign + String(magnitude) }
        let fraction = String(magnitude % per)
        return sign + String(magnitude / per) + "." + String(repeating: "0", count: digits - fraction.count) + fraction
    }

    /// "100.50 USD".
    public var description: String { "\(formatted) \(currency.code)" }

    /// - Throws: `BillingError.invalidArgument` on a currency mismatch or overflow.
    public func adding(_ other: Money) throws(BillingError) -> Money {
        guard other.currency == currency else {
            throw .invalidArgument("cannot add \(other.currency) to \(currency)")
        }
        let (sum, overflow) = amountMinorUnits.addingReportingOverflow(other.amountMinorUnits)
        guard !overflow else { throw .invalidArgument("amount overflows") }
        return Money(minorUnits: sum, currency)
    }

    public func subtracting(_ other: Money) throws(BillingError) -> Money {
        guard other.amountMinorUnits != .min else { throw .invalidArgument("amount overflows") }
        return try adding(Money(minorUnits: -other.amountMinorUnits, other.currency))
    }

    /// - Throws: `BillingError.invalidArgument` on overflow.
    public func multiplied(by factor: Int64) throws(BillingError) -> Money {
        let (product, overflow) = amountMinorUnits.multipliedReportingOverflow(by: factor)
        guard !overflow else { throw .invalidArgument("amount overflows") }
        return Money(minorUnits: product, currency)
    }

    public var negated: Money {
        precondition(amountMinorUnits != .min, "negating Int64.min minor units")
        return Money(minorUnits: -amountMinorUnits, currency)
    }
}

extension String {
    func trimmingSpaces() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
