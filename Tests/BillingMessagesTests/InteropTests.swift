import BillingMessages
import BillingTestSupport
import Foundation
import Testing

/// Proves the bindings against a second, independent protobuf implementation:
/// protoc's own (C++) parser and encoder, through `protoc --decode/--encode`.
@Suite struct InteropTests {
    @Test(arguments: 0..<3)
    func swiftBytesDecodeInProtocAndBack(seed: UInt64) async throws {
        for type in RoundTripTests.randomTypes {
            try await throughProtoc(type, seed: seed)
        }
    }

    /// Swift encodes, protoc decodes to text and encodes the text again, Swift
    /// decodes: a field that either side misreads changes the value.
    private func throughProtoc<M: RandomMessage>(_ type: M.Type, seed: UInt64) async throws {
        var generator = SeededGenerator(seed: seed &* 104_729 &+ UInt64(M.protoName.utf8.count))
        let value = M.random(using: &generator, depth: 0)
        let text = try await Protoc.run(["--decode=\(M.protoName)"], input: value.serializedBytes())
        let bytes = try await Protoc.run(["--encode=\(M.protoName)"], input: text)
        let back = try M(serializedBytes: bytes, limits: .default)
        #expect(back == value, "\(M.protoName) seed \(seed)")
    }

    @Test func protocBytesDecodeInSwift() async throws {
        let text = """
            id: "pay_1"
            account_id: "acc_ü"
            purpose: PAYMENT_PURPOSE_RENEWAL
            amount { amount_minor_units: -9223372036854775808 currency: "USD" }
            status: PAYMENT_STATUS_PAID
            provider_reference: "日本😀"
            check_attempts: 4294967295
            finished_at_unix_ms: 9223372036854775807
            """
        let bytes = try await Protoc.run(["--encode=billing.v1.Payment"], input: Array(text.utf8))
        let payment = try BillingV1.Payment(serializedBytes: bytes, limits: .default)
        #expect(payment.id == "pay_1")
        #expect(payment.accountId == "acc_ü")
        #expect(payment.purpose == .renewal)
        #expect(payment.amount?.amountMinorUnits == Int64.min)
        #expect(payment.amount?.currency == "USD")
        #expect(payment.status == .paid)
        #expect(payment.providerReference == "日本😀")
        #expect(payment.checkAttempts == UInt32.max)
        #expect(payment.finishedAtUnixMs == Int64.max)
    }

    @Test func protocOneofAndRepeatedDecodeInSwift() async throws {
        let text = """
            sequence: 18446744073709551615
            balance_changed { balance { amount_minor_units: 150 currency: "EUR" } payment_id: "pay_2" }
            """
        let bytes = try await Protoc.run(["--encode=billing.v1.PaymentEvent"], input: Array(text.utf8))
        let event = try BillingV1.PaymentEvent(serializedBytes: bytes, limits: .default)
        #expect(event.sequence == UInt64.max)
        guard case .balanceChanged(let changed)? = event.event else {
            Issue.record("expected balance_changed, got \(String(describing: event.event))")
            return
        }
        #expect(changed.balance?.amountMinorUnits == 150)
        #expect(changed.paymentId == "pay_2")

        let list = try await Protoc.run(
            ["--encode=billing.v1.ListPaymentsRequest"],
            input: Array("statuses: PAYMENT_STATUS_NEW statuses: PAYMENT_STATUS_CANCELLED statuses: 9".utf8)
        )
        let request = try BillingV1.ListPaymentsRequest(serializedBytes: list, limits: .default)
        #expect(request.statuses == [.new, .cancelled, .unrecognized(9)])
    }
}

/// Runs the system protoc over the repository's proto/ tree.
enum Protoc {
    static let protoRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("proto")

    static let protoFiles: [String] = {
        let enumerator = FileManager.default.enumerator(atPath: protoRoot.path)
        var files: [String] = []
        while let path = enumerator?.nextObject() as? String {
            if path.hasSuffix(".proto") { files.append(path) }
        }
        return files.sorted()
    }()

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func run(_ arguments: [String], input: [UInt8]) async throws -> [UInt8] {
        let protoc = await ChildProcess.run(
            "/usr/bin/protoc",
            ["-I", protoRoot.path] + arguments + protoFiles,
            input: input
        )
        guard protoc.status == 0 else { throw Failure(description: "protoc \(arguments): \(protoc.errorText)") }
        return protoc.output
    }
}
