internal import BillingCore
internal import BillingProviders
internal import Foundation
internal import Logging
internal import NIOHTTP1

/// `POST /webhooks/paypal`: PayPal signs deliveries with a certificate and
/// offers one check, its verify-webhook-signature call, which billingd makes
/// for every delivery before reading it. A verified event names the payment
/// (`custom_id` of the order or the capture); billingd then checks it, which
/// captures an approved order at once instead of at the next poll.
struct PayPalWebhook {
    let provider: PayPalProvider
    /// The id PayPal gave the webhook endpoint (its dashboard or API).
    let webhookID: String

    func route(flows: PaymentFlows, logger: Logger) -> WebhookServer.Route {
        { request in
            let header = { (name: String) in request.headers.first(name: name) ?? "" }
            let delivery = PayPalWebhookDelivery(
                authAlgorithm: header("PAYPAL-AUTH-ALGO"), certificateURL: header("PAYPAL-CERT-URL"),
                transmissionID: header("PAYPAL-TRANSMISSION-ID"), transmissionSignature: header("PAYPAL-TRANSMISSION-SIG"),
                transmissionTime: header("PAYPAL-TRANSMISSION-TIME"), body: request.body)
            guard ![delivery.authAlgorithm, delivery.certificateURL, delivery.transmissionID, delivery.transmissionSignature,
                    delivery.transmissionTime].contains(""),
                  let event = try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any] else {
                return WebhookServer.Response(status: .badRequest, message: "not a PayPal delivery (transmission headers and a JSON event)")
            }
            do {
                guard try await provider.verifyWebhook(delivery, webhookID: webhookID) else {
                    logger.warning("PayPal webhook refused: PayPal did not send it", metadata: ["transmission": "\(delivery.transmissionID.prefix(64))"])
                    return WebhookServer.Response(status: .badRequest, message: "PayPal says it did not send this delivery")
                }
            } catch {
                logger.warning("PayPal webhook: verification failed", metadata: ["error": "\(error)"])
                return WebhookServer.Response(status: .serviceUnavailable, message: "the delivery could not be verified now")
            }
            let resource = event["resource"] as? [String: Any] ?? [:]
            let paymentID = (resource["custom_id"] as? String)
                ?? ((resource["purchase_units"] as? [[String: Any]])?.first?["custom_id"] as? String)
            let name = "\(event["event_type"] as? String ?? "?") \(event["id"] as? String ?? "?")"
            return await WebhookServer.check(paymentID, system: .paypal, event: name, flows: flows, logger: logger)
        }
    }
}
