/// An ISO 4217 currency and how many digits its minor unit has.
///
/// Only currencies in `known` are accepted: the number of minor digits decides
/// what "100.5" means, so guessing it for an unknown code would misprice money.
public struct Currency: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Upper-case alphabetic code, e.g. "USD".
    public let code: String
    /// 2 for USD (cents), 0 for JPY, 3 for KWD.
    public let minorUnitDigits: Int

    private init(_ code: String, _ minorUnitDigits: Int) {
        self.code = code
        self.minorUnitDigits = minorUnitDigits
    }

    public static let usd = Currency("USD", 2)
    public static let eur = Currency("EUR", 2)

    /// The currencies billingd prices in. Extend here with the ISO 4217 exponent.
    public static let known: [String: Currency] = Dictionary(
        uniqueKeysWithValues: [
            usd, eur, Currency("GBP", 2), Currency("CAD", 2), Currency("AUD", 2), Currency("CHF", 2),
            Currency("SEK", 2), Currency("NOK", 2), Currency("DKK", 2), Currency("PLN", 2),
            Currency("CZK", 2), Currency("JPY", 0), Currency("KWD", 3),
        ].map { ($0.code, $0) }
    )

    /// - Throws: `BillingError.invalidArgument` for a code not in `known`.
    public init(code: String) throws(BillingError) {
        guard let known = Self.known[code] else {
            throw .invalidArgument(
                "unknown currency \"\(code.prefix(8))\"; known: \(Self.known.keys.sorted().joined(separator: ", "))"
            )
        }
        self = known
    }

    /// 10^minorUnitDigits: minor units in one major unit.
    public var minorUnitsPerMajor: Int64 {
        var result: Int64 = 1
        for _ in 0..<minorUnitDigits { result *= 10 }
        return result
    }

    public var description: String { code }
}
