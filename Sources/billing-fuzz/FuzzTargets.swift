import BillingAPI
import BillingCore
import BillingDocuments
import BillingMessages
import BillingPanel
import BillingRPC
import BillingServer
import BillingWire
import Foundation
import NIOCore

/// One input; returns normally or traps (a finding).
typealias Target = @Sendable ([UInt8]) -> Void

/// Every target by name. A global of a file other than main.swift is
/// initialized on first use, so libFuzzer's own `main` may call into it.
let targets: [String: Target] = [
    "panel": { bytes in PanelInputs.check(bytes) },
    "invoice": { bytes in InvoiceInputs.check(bytes) },
    "frame": { bytes in
        var decoder = FrameDecoder(limits: WireLimits(maxFrameBytes: 64 << 10))
        var buffer = ByteBuffer(bytes: bytes)
        var frames = 0
        while let frame = try? decoder.decodeOne(&buffer) {
            frames += 1
            if case .frame(let decoded) = frame {
                precondition(decoded.payload.readableBytes <= 64 << 10, "a frame over the limit was decoded")
            }
        }
        precondition(frames <= bytes.count / 10 + 1, "more frames than 10-byte headers")
    },
    "envelope": { bytes in
        if let request = try? BillingV1.Request(serializedBytes: bytes, limits: .default) {
            // What decodes encodes, and decodes to the same again.
            let again = try! BillingV1.Request(serializedBytes: try! request.serializedBytes(), limits: .default)
            precondition(again == request, "Request does not survive a round trip")
        }
    },
    "requests": { bytes in
        let types: [any ProtoMessage.Type] =
            BillingV1.AccountsMethods.requestTypes + BillingV1.BalanceMethods.requestTypes
            + BillingV1.PaymentMethodsMethods.requestTypes + BillingV1.RenewalMethods.requestTypes
            + BillingV1.MigrationPaymentMethods.requestTypes + BillingV1.OperationsMethods.requestTypes
            + GrpcHealthV1.HealthMethods.requestTypes
        guard let first = bytes.first else { return }
        let type = types[Int(first) % types.count]
        if let message = try? type.init(
            serializedBytes: bytes.dropFirst(),
            limits: DecodeLimits(maxMessageBytes: 64 << 10)
        ) {
            let encoded = try! message.serializedBytes()
            let again = try! type.init(serializedBytes: encoded, limits: .default)
            precondition(try! again.serializedBytes() == encoded, "\(type) does not survive a round trip")
        }
    },
    "money": { bytes in
        guard let first = bytes.first else { return }
        let currencies = Currency.known.values.sorted { $0.code < $1.code }
        let currency = currencies[Int(first) % currencies.count]
        let text = String(decoding: bytes.dropFirst(), as: UTF8.self)
        if let money = try? Money(parsing: text, currency) {
            precondition(
                (try? Money(parsing: money.formatted, currency)) == money,
                "\(money.formatted) does not parse back"
            )
            _ = try? PaymentLimits.seedDefault.check(money, purpose: .topUp, system: .sandbox)
        }
    },
    "principal": { bytes in
        // URIs separated by 0xFF; the last part is the common name.
        let parts = bytes.split(separator: 0xFF, omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        let peer = PeerIdentity(commonName: parts.last ?? "", uris: Array(parts.dropLast()))
        if let principal = Principal(peer: peer) {
            let billing = peer.uris.filter { $0.lowercased().hasPrefix("billing:") }
            precondition(billing.count == 1, "a role from \(billing.count) billing URIs")
            precondition(
                peer.uris.allSatisfy { $0.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F } },
                "a role from a certificate with a control or non-ASCII character"
            )
            precondition(billing[0].hasSuffix("/" + principal.name), "the name is not the URI's")
        } else {
            precondition(Principal.refusal(peer) != nil, "refused without a reason")
        }
    },
    "webhook": { bytes in
        // A Stripe delivery: the Stripe-Signature header, 0xFF, the body; the
        // clock at both ends of its range and at a usual time.
        let split = bytes.split(separator: 0xFF, maxSplits: 1, omittingEmptySubsequences: false)
        let header = String(decoding: split[0], as: UTF8.self)
        let body = split.count == 2 ? Array(split[1]) : []
        let webhook = StripeWebhook(secret: "whsec_fuzz")
        for now in [Int64.min, -1, 0, 1_700_000_000, Int64.max] {
            if let event = try? webhook.verify(body: body, signature: header, now: now) {
                // Only a body signed with the secret can pass: a finding if not.
                precondition(header.contains("v1="), "verified without a v1 signature: \(event)")
            }
        }
    },
    "config": { bytes in
        // JSON, then 0xFF, then environment lines KEY=VALUE.
        let split = bytes.split(separator: 0xFF, maxSplits: 1, omittingEmptySubsequences: false)
        var environment: [String: String] = [:]
        if split.count == 2 {
            for line in String(decoding: split[1], as: UTF8.self).split(separator: "\n") {
                let pair = line.split(separator: "=", maxSplits: 1)
                if pair.count == 2, pair[0].hasPrefix("BILLINGD_") { environment[String(pair[0])] = String(pair[1]) }
            }
        }
        if let configuration = try? BillingConfiguration.load(
            data: Data(split[0]),
            source: "fuzz.json",
            environment: environment
        ),
            configuration.validate().isEmpty
        {
            // A configuration that validates must start as far as its values go.
            _ = try! configuration.paymentLimits()
        }
    },
]

#if FUZZING
/// libFuzzer's entry: the target named by $BILLING_FUZZ_TARGET (deploy/fuzz sets it).
let fuzzed: Target = {
    let name = ProcessInfo.processInfo.environment["BILLING_FUZZ_TARGET"] ?? ""
    guard let target = targets[name] else {
        FileHandle.standardError.write(
            Data("set BILLING_FUZZ_TARGET to one of \(targets.keys.sorted().joined(separator: ", "))\n".utf8)
        )
        exit(2)
    }
    return target
}()

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzed(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}
#endif

/// The invoice documents, from text that came from outside (a payer's name
/// and email, configured issuer lines and legal text; NUL-separated fields):
/// the page never carries markup of it, the PDF always renders.
enum InvoiceInputs {
    static func check(_ bytes: [UInt8]) {
        let fields = bytes.split(separator: 0, omittingEmptySubsequences: false).map {
            String(decoding: $0.prefix(400), as: UTF8.self)
        }
        let document = Self.document(fields, count: bytes.count)
        // The same structure with every character of every field an "x": the
        // page's markup must be exactly the template's, whatever the fields hold.
        let blank = fields.map { String($0.map { $0 == "\n" ? "\n" : "x" }) }
        let html = InvoiceHTML.render(document)
        let template = InvoiceHTML.render(Self.document(blank, count: bytes.count))
        // Counted per Unicode scalar: a combining mark must not hide a "<".
        for mark in ["<", ">", "\""] as [Unicode.Scalar] {
            precondition(
                html.unicodeScalars.filter { $0 == mark }.count == template.unicodeScalars.filter { $0 == mark }.count,
                "text from outside added markup (\(mark)) to the page"
            )
        }
        guard let pdf = try? InvoicePDF.render(document) else { preconditionFailure("the PDF did not render") }
        precondition(pdf.starts(with: Array("%PDF-".utf8)), "not a PDF")
    }

    static func document(_ fields: [String], count: Int) -> InvoiceDocument {
        func field(_ index: Int) -> String { index < fields.count ? fields[index] : "" }
        let issuer = InvoiceIssuer(
            name: field(3),
            lines: [field(4), field(5)],
            bankLines: [field(6)],
            legalText: field(7)
        )
        let payment = Payment(
            id: "pay_fuzz",
            accountID: "acc",
            payerID: "pyr",
            purpose: .topUp,
            amount: Money(minorUnits: Int64(count) * 101, .usd),
            status: [PaymentStatus.new, .paid, .cancelled][count % 3],
            optionKind: .invoice,
            system: nil,
            paymentMethodID: nil,
            savedPaymentMethodID: nil,
            providerReference: "",
            redirectURL: "",
            returnURL: "",
            invoiceNumber: "INV-2026-000001",
            failureReason: field(8),
            renewalOrderID: nil,
            migrationOrderID: nil,
            createdAtMs: 1_795_000_000_000,
            updatedAtMs: 1_795_000_000_000,
            finishedAtMs: 1_795_000_000_000,
            nextCheckAtMs: nil,
            checkAttempts: 0
        )
        return InvoiceDocument(
            invoice: Invoice(
                number: "INV-2026-000001",
                series: "INV-2026-",
                sequence: 1,
                paymentID: payment.id,
                accountID: "acc",
                payerID: "pyr",
                payerName: field(0),
                payerEmail: field(1),
                description: field(2),
                amount: payment.amount,
                issuedAtMs: payment.createdAtMs,
                dueAtMs: payment.createdAtMs + 14 * 86_400_000,
                issuer: issuer
            ),
            payment: payment
        )
    }
}
