import BillingMessages
import Testing

/// Every generated type, seeded: encode then decode gives the same value.
@Suite struct RoundTripTests {
    static let randomTypes: [any RandomMessage.Type] = allMessageTypes.map { type in
        guard let random = type as? any RandomMessage.Type else {
            preconditionFailure("\(type.protoName) has no generated random values")
        }
        return random
    }

    @Test func everyMessageTypeHasRandomValues() {
        #expect(Self.randomTypes.count == allMessageTypes.count)
        #expect(allMessageTypes.count > 60)
    }

    @Test(arguments: 0..<40)
    func everyMessageRoundTrips(seed: UInt64) throws {
        for type in Self.randomTypes {
            try roundTrip(type, seed: seed)
        }
    }

    private func roundTrip<M: RandomMessage>(_ type: M.Type, seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed &* 7919 &+ UInt64(M.protoName.utf8.count))
        let value = M.random(using: &generator, depth: 0)
        let bytes = try value.serializedBytes()
        let decoded = try M(serializedBytes: bytes, limits: .default)
        #expect(decoded == value, "\(M.protoName) seed \(seed)")
        // Deterministic: encoding the decoded value gives the same bytes.
        #expect(try decoded.serializedBytes() == bytes, "\(M.protoName) seed \(seed)")
    }

    @Test func defaultMessageEncodesToNothing() throws {
        #expect(try BillingV1.Payment().serializedBytes().isEmpty)
        #expect(try BillingV1.Payment(serializedBytes: [], limits: .default) == BillingV1.Payment())
    }

    @Test func unknownEnumValueSurvives() throws {
        var payment = BillingV1.Payment()
        payment.status = .unrecognized(77)
        payment.purpose = .unrecognized(-5)
        let decoded = try BillingV1.Payment(serializedBytes: payment.serializedBytes(), limits: .default)
        #expect(decoded.status == .unrecognized(77))
        #expect(decoded.purpose == .unrecognized(-5))
    }

    @Test func oneofKeepsTheCaseItWasGiven() throws {
        var option = BillingV1.PaymentOption()
        var system = BillingV1.PaymentSystemOption()
        system.system = .paypal
        system.saveMethod = true
        system.returnUrl = "https://panel.example/payments?x=ä"
        option.option = .paymentSystem(system)
        let decoded = try BillingV1.PaymentOption(serializedBytes: option.serializedBytes(), limits: .default)
        #expect(decoded.option == .paymentSystem(system))

        option.option = .invoice(BillingV1.InvoiceOption())
        let invoice = try BillingV1.PaymentOption(serializedBytes: option.serializedBytes(), limits: .default)
        #expect(invoice.option == .invoice(BillingV1.InvoiceOption()))
    }

    @Test func encoderRefusesNULInsideAString() {
        var account = BillingV1.Account()
        account.id = "acc\u{0}evil"
        #expect(throws: MessageError.invalidString(field: "id")) {
            try account.serializedBytes()
        }
    }
}
