internal import BillingCore
internal import BillingProviders
internal import Logging

/// `POST /webhooks/paypal`: PayPal signs deliveries with a certificate and
/// offers one check, its verify-webhook-signature call, which billingd makes
/// for every delivery before reading it. A verified event names the payment
/// (`custom_id` of the order or the capture); billingd then checks it, which
/// captures an approved order at once instead of at the next poll.
struct PayPalWebhook {
    let provider: PayPalProvider
    /// The id PayPal gave the webhook endpoint (its dashboard or API).
    let webhookID: String

    func route(flows: PaymentFlows, logger: Logger) -> WebhookRoutes.Route {
        { request in
            let header = { (name: String) in request.header(name) ?? "" }
            let delivery = PayPalWebhookDelivery(
                authAlgorithm: header("PAYPAL-AUTH-ALGO"),
                certificateURL: header("PAYPAL-CERT-URL"),
                transmissionID: header("PAYPAL-TRANSMISSION-ID"),
                transmissionSignature: header("PAYPAL-TRANSMISSION-SIG"),
                transmissionTime: header("PAYPAL-TRANSMISSION-TIME"),
                body: request.body
            )
            guard
                ![
                    delivery.authAlgorithm, delivery.certificateURL, delivery.transmissionID,
                    delivery.transmissionSignature,
                    delivery.transmissionTime,
                ].contains("")
            else {
                return WebhookRoutes.Answer(
                    status: .badRequest,
                    message: "not a PayPal delivery (no transmission headers)"
                )
            }
            let event: PayPalWebhookEvent
            do {
                guard let verified = try await provider.verifyWebhook(delivery, webhookID: webhookID) else {
                    logger.warning(
                        "PayPal webhook refused: PayPal did not send it",
                        metadata: ["transmission": "\(delivery.transmissionID.prefix(64))"]
                    )
                    return WebhookRoutes.Answer(
                        status: .badRequest,
                        message: "PayPal says it did not send this delivery"
                    )
                }
                event = verified
            } catch {
                logger.warning("PayPal webhook: verification failed", metadata: ["error": "\(error)"])
                return WebhookRoutes.Answer(
                    status: .serviceUnavailable,
                    message: "the delivery could not be verified now"
                )
            }
            if let wallet = event.vaultedWallet {
                // The id of a wallet saved with an order, sent after its capture.
                do {
                    let confirmed = try await flows.confirmLateMethod(
                        paymentReference: wallet.orderID,
                        system: .paypal,
                        method: wallet.method
                    )
                    logger.info(
                        "PayPal vault id",
                        metadata: ["order": "\(wallet.orderID.prefix(64))", "confirmed": "\(confirmed)"]
                    )
                    return WebhookRoutes.Answer(
                        status: .ok,
                        message: confirmed ? "saved method confirmed" : "no pending method of ours"
                    )
                } catch {
                    logger.warning(
                        "PayPal webhook: confirming the saved wallet failed",
                        metadata: ["error": "\(error)"]
                    )
                    return WebhookRoutes.Answer(
                        status: .serviceUnavailable,
                        message: "the saved method could not be recorded now"
                    )
                }
            }
            return await WebhookRoutes.check(
                event.paymentID,
                system: .paypal,
                event: "\(event.type) \(event.id)",
                flows: flows,
                logger: logger
            )
        }
    }
}
