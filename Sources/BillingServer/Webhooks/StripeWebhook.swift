internal import BillingCore
internal import BillingProviders
internal import BillingTLS
internal import Foundation
internal import Logging

/// A Stripe webhook delivery, verified: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]`
/// where v1 is HMAC-SHA256 of "<t>.<raw body>" under the endpoint's signing
/// secret, and t is within the tolerance of now (replays of old deliveries
/// are refused).
///
/// The event only says which payment to look at: billingd then asks Stripe's
/// API (the same check the poller makes) and moves the payment through the
/// one transition. A forged or stale event can therefore cost a request to
/// Stripe at most, never a credit.
public struct StripeWebhook: Sendable {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case missingSignature
        case malformedSignature
        case stale(seconds: Int64)
        case mismatch
        case malformedEvent

        public var description: String {
            switch self {
            case .missingSignature: return "no Stripe-Signature header"
            case .malformedSignature: return "the Stripe-Signature header is not t=…,v1=…"
            case .stale(let seconds): return "the signature's timestamp is \(seconds) s away from now (tolerance 300 s)"
            case .mismatch: return "no v1 signature matches the signing secret"
            case .malformedEvent: return "the body is not a Stripe event"
            }
        }
    }

    public struct Event: Equatable, Sendable {
        public let id: String
        public let type: String
        /// Our payment id, when the event is about one of our payments.
        public let paymentID: String?
        /// The PaymentIntent a charge.* or charge.dispute.* event names (a
        /// refund or dispute): its metadata names our payment.
        public var paymentIntent: String? = nil
    }

    /// The signing secret (whsec_…); a reload may replace it.
    let secret: Secret
    var tolerance: Duration = .seconds(300)

    public init(secret: String) {
        self.secret = Secret(secret)
    }

    /// The event, if the signature holds for this body at `now` (seconds since the epoch).
    public func verify(body: [UInt8], signature header: String?, now: Int64) throws(Failure) -> Event {
        guard let header, !header.isEmpty else { throw .missingSignature }
        var timestamp: Int64?
        var signatures: [[UInt8]] = []
        for item in header.split(separator: ",") {
            let pair = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2 else { throw .malformedSignature }
            switch pair[0] {
            case "t":
                guard let value = Int64(pair[1]) else { throw .malformedSignature }
                timestamp = value
            case "v1":
                guard let bytes = Self.hex(pair[1]) else { throw .malformedSignature }
                signatures.append(bytes)
            default:
                continue  // v0 (test-mode legacy) and future schemes
            }
        }
        guard let timestamp, !signatures.isEmpty else { throw .malformedSignature }
        // The timestamp is the sender's: any Int64, so the difference is
        // computed without trapping (t=-9223372036854775808 is only stale).
        let (skew, overflow) = now.subtractingReportingOverflow(timestamp)
        guard !overflow, skew.magnitude <= tolerance.components.seconds.magnitude else {
            throw .stale(seconds: overflow ? (timestamp < 0 ? Int64.max : Int64.min) : skew)
        }
        let expected = MessageAuthentication.sha256(
            key: Array(secret.value.utf8),
            message: Array("\(timestamp).".utf8) + body
        )
        guard signatures.contains(where: { MessageAuthentication.constantTimeEqual($0, expected) }) else {
            throw .mismatch
        }
        return try Self.event(body)
    }

    /// checkout.session.* events name our payment in `client_reference_id`,
    /// payment_intent.* events in `metadata.payment_id`; charge.* and
    /// charge.dispute.* (refunds, disputes) only their PaymentIntent.
    static func event(_ body: [UInt8]) throws(Failure) -> Event {
        guard let event = try? JSONDecoder().decode(Delivered.self, from: Data(body)), let id = event.id,
            let type = event.type,
            let object = event.data?.object
        else { throw .malformedEvent }
        return Event(
            id: id,
            type: type,
            paymentID: object.clientReferenceID ?? object.paymentID,
            paymentIntent: object.paymentIntent
        )
    }

    /// An event as Stripe sends it; of `data.object` (a session, an intent,
    /// a charge, a dispute) only the fields that lead to our payment, each
    /// read on its own: one of another shape leaves that field out.
    private struct Delivered: Decodable {
        var id: String?
        var type: String?
        var data: Data?

        struct Data: Decodable {
            var object: Object?
        }

        struct Object: Decodable {
            var clientReferenceID: String?
            var paymentID: String?
            var paymentIntent: String?

            enum CodingKeys: String, CodingKey {
                case metadata
                case clientReferenceID = "client_reference_id"
                case paymentIntent = "payment_intent"
            }

            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                clientReferenceID = try? container.decodeIfPresent(String.self, forKey: .clientReferenceID)
                paymentIntent = try? container.decodeIfPresent(String.self, forKey: .paymentIntent)
                paymentID = (try? container.decodeIfPresent([String: String].self, forKey: .metadata))??["payment_id"]
            }
        }
    }

    private static func hex(_ text: String) -> [UInt8]? {
        guard text.utf8.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}

extension StripeWebhook {
    /// `POST /webhooks/stripe`: 400 for a delivery that fails verification
    /// (nothing changes), then the payment it names is checked.
    /// - Parameter provider: asked for the payment of a PaymentIntent that a
    ///   refund or dispute event names.
    func route(
        flows: PaymentFlows,
        provider: StripeProvider?,
        clock: any BillingClock,
        logger: Logger
    ) -> WebhookRoutes.Route {
        { request in
            let event: Event
            do {
                event = try verify(
                    body: request.body,
                    signature: request.header("Stripe-Signature"),
                    now: clock.nowMs / 1000
                )
            } catch {
                logger.warning("Stripe webhook refused", metadata: ["reason": "\(error)"])
                return WebhookRoutes.Answer(status: .badRequest, message: "\(error)")
            }
            var paymentID = event.paymentID
            if paymentID == nil, let intent = event.paymentIntent, let provider {
                do {
                    paymentID = try await provider.paymentID(ofIntent: intent)
                } catch {
                    logger.warning(
                        "Stripe webhook: the payment intent could not be read",
                        metadata: ["error": "\(error)"]
                    )
                    return WebhookRoutes.Answer(
                        status: .serviceUnavailable,
                        message: "the payment could not be found now"
                    )
                }
            }
            return await WebhookRoutes.check(
                paymentID,
                system: .stripe,
                event: "\(event.type) \(event.id)",
                flows: flows,
                logger: logger
            )
        }
    }
}
