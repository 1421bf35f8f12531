import BillingCore
import Testing

@Suite struct MoneyTests {
    @Test(
        arguments: [
            ("100", 100_00), ("100.5", 100_50), ("0.50", 50), ("15000.00", 15_000_00), ("  7.05 ", 7_05),
            ("-3.20", -3_20), ("0", 0), ("92233720368547758.07", Int64.max),
        ] as [(String, Int64)]
    )
    func parsesWhatAPersonTypes(text: String, minor: Int64) throws {
        #expect(try Money(parsing: text, .usd).amountMinorUnits == minor)
    }

    @Test(arguments: [
        "", " ", "abc", "1,000.00", "$100", "1e3", "10.", ".5", "1.234", "1..2", "--1", "+1", "1 000",
        "92233720368547758.08", "99999999999999999999", "١٠٠", "0x10", "NaN", "inf",
    ])
    func refusesWhatIsNotAnAmount(text: String) {
        #expect(throws: BillingError.self) { try Money(parsing: text, .usd) }
    }

    @Test func decimalsFollowTheCurrency() throws {
        #expect(try Money(parsing: "1500", try Currency(code: "JPY")).amountMinorUnits == 1500)
        #expect(throws: BillingError.self) { try Money(parsing: "15.5", try Currency(code: "JPY")) }
        #expect(try Money(parsing: "1.005", try Currency(code: "KWD")).amountMinorUnits == 1005)
    }

    @Test func formatsExactly() throws {
        #expect(Money(minorUnits: 100_50, .usd).formatted == "100.50")
        #expect(Money(minorUnits: 5, .usd).formatted == "0.05")
        #expect(Money(minorUnits: -320, .usd).description == "-3.20 USD")
        #expect(Money(minorUnits: Int64.min, .usd).formatted == "-92233720368547758.08")
        #expect(Money(minorUnits: 1500, try Currency(code: "JPY")).formatted == "1500")
    }

    @Test(arguments: 0..<200)
    func formatThenParseIsIdentity(seed: Int) throws {
        var generator = SystemRandomNumberGenerator()
        let minor =
            seed < 4
            ? [Int64.max, Int64.min + 1, 0, 1][seed] : Int64.random(in: Int64.min + 1...Int64.max, using: &generator)
        let money = Money(minorUnits: minor, .usd)
        #expect(try Money(parsing: money.formatted, .usd) == money, "minor \(minor)")
    }

    @Test func arithmeticOverflowThrows() {
        #expect(throws: BillingError.self) { try Money(minorUnits: .max, .usd).adding(Money(minorUnits: 1, .usd)) }
        #expect(throws: BillingError.self) { try Money(minorUnits: .min, .usd).subtracting(Money(minorUnits: 1, .usd)) }
        #expect(throws: BillingError.self) { try Money(minorUnits: .max / 2 + 1, .usd).multiplied(by: 2) }
        #expect(throws: BillingError.self) { try Money(minorUnits: 1, .usd).adding(Money(minorUnits: 1, .eur)) }
    }

    @Test func unknownCurrencyIsRefused() {
        #expect(throws: BillingError.self) { try Currency(code: "XXX") }
        #expect(throws: BillingError.self) { try Currency(code: "usd") }
    }

    @Test(arguments: [
        ("0", false), ("0.49", false), ("0.50", true), ("15000.00", true), ("15000.01", false), ("-1", false),
        ("100", true),
    ])
    func topUpLimitsAreTheSeeds(text: String, allowed: Bool) throws {
        let amount = try Money(parsing: text, .usd)
        if allowed {
            try TopUpPolicy.seedDefault.check(amount)
        } else {
            #expect(throws: BillingError.self) { try TopUpPolicy.seedDefault.check(amount) }
        }
    }

    @Test func transitionsLeaveNewOnly() throws {
        try PaymentStatus.new.checkTransition(to: .paid, paymentID: "p")
        try PaymentStatus.new.checkTransition(to: .cancelled, paymentID: "p")
        for from in PaymentStatus.allCases {
            for to in PaymentStatus.allCases where !(from == .new && to != .new) {
                #expect(throws: BillingError.invalidTransition(paymentID: "p", from: from, to: to)) {
                    try from.checkTransition(to: to, paymentID: "p")
                }
            }
        }
    }
}
