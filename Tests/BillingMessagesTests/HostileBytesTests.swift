import BillingMessages
import Testing

/// Bytes from outside: every case ends in a thrown `MessageError`, never a trap.
@Suite struct HostileBytesTests {
    private func decodePayment(_ bytes: [UInt8], limits: DecodeLimits = .default) throws -> BillingV1.Payment {
        try BillingV1.Payment(serializedBytes: bytes, limits: limits)
    }

    private func samplePayment() -> BillingV1.Payment {
        var payment = BillingV1.Payment()
        payment.id = "pay_123"
        payment.accountId = "acc_ü"
        payment.amount = BillingV1.Money()
        payment.amount?.amountMinorUnits = 1_000_00
        payment.amount?.currency = "USD"
        payment.status = .new
        payment.checkAttempts = 3
        return payment
    }

    @Test func everyTruncationThrowsOrDecodes() throws {
        let bytes = try samplePayment().serializedBytes()
        for length in 0..<bytes.count {
            // A cut at a field boundary is a valid, shorter message; any other
            // cut must throw. Neither may crash.
            _ = try? decodePayment(Array(bytes.prefix(length)))
        }
        #expect(throws: MessageError.self) { try decodePayment(Array(bytes.dropLast())) }
    }

    @Test func lengthPastTheEndThrows() {
        // Field 1 (id, string) claims 100 bytes but 3 follow.
        #expect(throws: MessageError.malformed("length past the end")) {
            try decodePayment([0x0A, 100, 0x61, 0x62, 0x63])
        }
    }

    @Test func wrongWireTypeThrows() {
        // Field 1 is a string; a varint there is not protobuf for this type.
        #expect(throws: MessageError.self) { try decodePayment([0x08, 0x01]) }
        // Field 21 (check_attempts, uint32) as a 32-bit fixed value.
        #expect(throws: MessageError.self) { try decodePayment([0xAD, 0x01, 1, 0, 0, 0]) }
    }

    @Test func groupsAndReservedWireTypesThrow() {
        #expect(throws: MessageError.self) { try decodePayment([0x0B, 0x0C]) }
        #expect(throws: MessageError.self) { try decodePayment([0x0E, 0x00]) }
        #expect(throws: MessageError.self) { try decodePayment([0x00, 0x00]) }  // field 0
    }

    @Test func overlongVarintThrows() {
        let varint: [UInt8] = Array(repeating: 0xFF, count: 10) + [0x01]
        #expect(throws: MessageError.self) { try decodePayment([0xA8, 0x01] + varint) }
    }

    @Test func invalidUTF8InAStringThrows() {
        #expect(throws: MessageError.invalidString(field: "id")) {
            try decodePayment([0x0A, 0x02, 0xC3, 0x28])
        }
        // A nested message's string is checked too (amount.currency).
        #expect(throws: MessageError.invalidString(field: "currency")) {
            try decodePayment([0x2A, 0x04, 0x12, 0x02, 0xFF, 0xFE])
        }
    }

    @Test func nulInsideAStringThrows() {
        #expect(throws: MessageError.invalidString(field: "id")) {
            try decodePayment([0x0A, 0x03, 0x61, 0x00, 0x62])
        }
    }

    @Test func nestingPastTheLimitThrows() throws {
        var event = BillingV1.PaymentEvent()
        var changed = BillingV1.PaymentStatusChanged()
        changed.payment = samplePayment()
        event.event = .paymentStatusChanged(changed)
        let bytes = try event.serializedBytes()
        #expect(throws: MessageError.tooDeep(limit: 3)) {
            try BillingV1.PaymentEvent(serializedBytes: bytes, limits: DecodeLimits(maxDepth: 3))
        }
        _ = try BillingV1.PaymentEvent(serializedBytes: bytes, limits: DecodeLimits(maxDepth: 4))
    }

    @Test func deeplyNestedUnknownFieldsDoNotRecurse() throws {
        // 10,000 levels of an unknown length-delimited field 99: opaque to both
        // the validator and protobuf-c, so it costs no stack.
        var body: [UInt8] = []
        for _ in 0..<10_000 {
            body = [0x9A, 0x06] + varint(UInt64(body.count)) + body
        }
        let payment = try decodePayment(body)
        #expect(payment == BillingV1.Payment())
    }

    @Test func sizeOverTheLimitThrowsBeforeParsing() {
        let bytes = [UInt8](repeating: 0xFF, count: 65)
        #expect(throws: MessageError.tooLarge(bytes: 65, limit: 64)) {
            try decodePayment(bytes, limits: DecodeLimits(maxMessageBytes: 64))
        }
    }

    @Test func garbageAsAnEnvelopeThrows() {
        let garbage = Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        #expect(throws: MessageError.self) {
            try BillingV1.Request(serializedBytes: garbage, limits: .default)
        }
    }

    @Test(arguments: 0..<8)
    func randomMutationsNeverTrap(seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        for type in RoundTripTests.randomTypes {
            try mutate(type, &generator)
        }
    }

    private func mutate<M: RandomMessage>(_ type: M.Type, _ generator: inout SeededGenerator) throws {
        let value = M.random(using: &generator, depth: 0)
        var bytes = try value.serializedBytes()
        for _ in 0..<20 {
            guard !bytes.isEmpty else { return }
            var mutated = bytes
            switch generator.below(4) {
            case 0: mutated[generator.below(mutated.count)] = UInt8(truncatingIfNeeded: generator.next())
            case 1: mutated.removeSubrange(generator.below(mutated.count)...)
            case 2: mutated.insert(UInt8(truncatingIfNeeded: generator.next()), at: generator.below(mutated.count))
            default: mutated[generator.below(mutated.count)] ^= 0x80
            }
            // Either outcome is fine; a decoded value must encode again.
            if let decoded = try? M(serializedBytes: mutated, limits: .default) {
                _ = try decoded.serializedBytes()
            }
            bytes = mutated
        }
    }

    private func varint(_ value: UInt64) -> [UInt8] {
        var value = value
        var out: [UInt8] = []
        repeat {
            var byte = UInt8(value & 0x7F)
            value >>= 7
            if value != 0 { byte |= 0x80 }
            out.append(byte)
        } while value != 0
        return out
    }
}
