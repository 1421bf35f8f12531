import BillingCore
import Testing

@Suite struct StatusTests {
    @Test func namesAreWrittenAsPeopleWriteThem() {
        #expect(PaymentSystem.allCases.map(\.displayName) == ["Stripe", "PayPal", "Sandbox"])
        #expect(PaymentStatus.allCases.map(\.description) == ["New", "Paid", "Cancelled"])
    }

    @Test func onlyNewMovesAndOnlyToAFinalStatus() {
        #expect(throws: Never.self) { try PaymentStatus.new.checkTransition(to: .paid, paymentID: "p") }
        #expect(throws: Never.self) { try PaymentStatus.new.checkTransition(to: .cancelled, paymentID: "p") }
        for (from, to) in [
            (PaymentStatus.new, PaymentStatus.new), (.paid, .cancelled), (.cancelled, .paid), (.paid, .paid),
        ] {
            #expect(throws: BillingError.self) { try from.checkTransition(to: to, paymentID: "p") }
        }
    }
}
