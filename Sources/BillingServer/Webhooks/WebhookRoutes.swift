internal import BillingCore
internal import Foundation
internal import Hummingbird
internal import Logging
internal import NIOCore

/// The HTTP endpoint payment systems deliver webhooks to: `POST /webhooks/<system>`,
/// routed by Hummingbird.
///
/// Plain HTTP on the configured address: in production it sits behind the
/// TLS-terminating proxy the payment system reaches (Stripe requires HTTPS).
/// A body over `maxBodyBytes` is refused with 413 (from its Content-Length
/// before a byte of it is read, else once it grows past the limit); another
/// method than POST gets 405 (the connection closes after a 413, so the rest
/// of such a body is never read); a connection silent for 10 s is closed (the
/// server's idle timeout, `BillingApplication`).
enum WebhookRoutes {
    struct Request: Sendable {
        let headers: HTTPFields
        let body: [UInt8]

        /// A header's value, by its name in any case.
        func header(_ name: String) -> String? {
            let wanted = name.lowercased()
            return headers.first { $0.name.canonicalName == wanted }?.value
        }
    }

    struct Answer: Sendable {
        let status: HTTPResponse.Status
        let message: String
    }

    typealias Route = @Sendable (Request) async -> Answer

    /// The routes, each a path of its own.
    static func router(_ routes: [String: Route], maxBodyBytes: Int) -> Router<BasicRequestContext> {
        let router = Router()
        for (path, route) in routes {
            router.post(RouterPath(path)) { request, _ in
                if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodyBytes {
                    return response(Answer(status: .contentTooLarge, message: "the body is over \(maxBodyBytes) bytes"))
                }
                var request = request
                let body: ByteBuffer
                do {
                    body = try await request.collectBody(upTo: maxBodyBytes)
                } catch let error as HTTPError where error.status == .contentTooLarge {
                    return response(Answer(status: .contentTooLarge, message: "the body is over \(maxBodyBytes) bytes"))
                } catch is NIOTooManyBytesError {
                    // A chunked body that grew past the limit.
                    return response(Answer(status: .contentTooLarge, message: "the body is over \(maxBodyBytes) bytes"))
                }
                // What the delivery changes is audited as the payment system's.
                let actor = AuditActor(who: "webhook:\(path.split(separator: "/").last ?? "")", via: "POST \(path)")
                let answer = await Audit.$actor.withValue(actor) {
                    await route(Request(headers: request.headers, body: Array(body.readableBytesView)))
                }
                return response(answer)
            }
            for method in [HTTPRequest.Method.get, .put, .delete, .patch, .head, .options, .trace] {
                router.on(RouterPath(path), method: method) { _, _ in
                    response(Answer(status: .methodNotAllowed, message: "webhooks are POSTed"))
                }
            }
        }
        return router
    }

    /// What every verified event leads to: the payment it names is checked at
    /// its payment system now (`PaymentFlows.check`, as the poller would).
    /// 200 once checked, or when it names no payment of ours; 503 when the
    /// payment system could not be asked, so it delivers again later (the
    /// poller checks meanwhile).
    static func check(
        _ paymentID: String?,
        system: PaymentSystem,
        event: String,
        flows: PaymentFlows,
        logger: Logger
    ) async -> Answer {
        guard let paymentID else { return Answer(status: .ok, message: "no payment of ours") }
        do {
            guard let after = try await flows.check(paymentID: paymentID, system: system) else {
                return Answer(status: .ok, message: "no \(system.rawValue) payment of ours")
            }
            logger.info(
                "webhook",
                metadata: [
                    "system": "\(system.rawValue)", "event": "\(event)", "payment": "\(paymentID)",
                    "status": "\(after.status)",
                ]
            )
            return Answer(status: .ok, message: "payment \(paymentID) is \(after.status)")
        } catch {
            logger.warning(
                "webhook: checking the payment failed",
                metadata: ["payment": "\(paymentID)", "error": "\(error)"]
            )
            return Answer(status: .serviceUnavailable, message: "the payment could not be checked now")
        }
    }

    private struct Message: Encodable {
        let message: String
    }

    private static func response(_ answer: Answer) -> Response {
        let json = (try? JSONEncoder().encode(Message(message: answer.message))) ?? Data("{}".utf8)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        // The rest of a refused body is not read: the connection ends here.
        if answer.status == .contentTooLarge { headers[.connection] = "close" }
        return Response(
            status: answer.status,
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: json + Data("\n".utf8)))
        )
    }
}
