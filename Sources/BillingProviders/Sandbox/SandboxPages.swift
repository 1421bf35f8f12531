internal import BillingCore
public import Hummingbird

/// The sandbox's "hosted payment page", routed by Hummingbird and served by
/// billingd over plain HTTP on loopback (it handles no real money or card
/// data):
///
/// - `GET /pay/{id}`: the amount and two buttons;
/// - `POST /pay/{id}/approve`, `POST /pay/{id}/decline`: decides the payment
///   and redirects (303) to the payment's return URL, or says it was decided
///   before (409);
/// - the same paths with another method: 405; anything else: 404.
public enum SandboxPages {
    /// The routes, deciding through `provider`. The server that carries them
    /// tells the provider its URL once it listens (`SandboxProvider.setBaseURL`).
    public static func router(_ provider: SandboxProvider) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/pay/:id") { _, context in
            try await answer(provider, id: context.parameters.require("id"), action: nil)
        }
        for action in ["approve", "decline"] {
            router.post("/pay/:id/\(action)") { _, context in
                try await answer(provider, id: context.parameters.require("id"), action: action)
            }
            notAllowed(router, "/pay/:id/\(action)", except: .post)
        }
        notAllowed(router, "/pay/:id", except: .get)
        return router
    }

    /// 405 for every method but the path's own.
    private static func notAllowed(
        _ router: Router<BasicRequestContext>,
        _ path: String,
        except allowed: HTTPRequest.Method
    ) {
        let methods: [HTTPRequest.Method] = [.get, .head, .post, .put, .delete, .patch, .options, .trace]
        for method in methods where method != allowed && !(allowed == .get && method == .head) {
            router.on(RouterPath(path), method: method) { _, _ in
                page(.methodNotAllowed, "Not allowed", "<p>Use the buttons.</p>")
            }
        }
    }

    private static func answer(_ provider: SandboxProvider, id: String, action: String?) async -> Response {
        let notFound = page(.notFound, "Not found", "<p>No such payment.</p>")
        // Our ids are 64 bytes at most; anything longer names nothing.
        guard id.utf8.count <= 64 else { return notFound }
        do {
            guard let action else {
                guard let payment = try await provider.page(id) else { return notFound }
                let open = payment.status == .open
                let body = """
                    <p class="amount">\(escape(payment.amount)) \(escape(payment.currency))</p>
                    <p>Sandbox payment <code>\(escape(id))</code>: \(payment.status.rawValue)\(payment.saveMethod ? ", the card will be saved" : "").</p>
                    \(open ? """
                    <form method="post" action="/pay/\(escape(id))/approve"><button type="submit">Pay</button></form>
                    <form method="post" action="/pay/\(escape(id))/decline"><button type="submit">Decline</button></form>
                    """ : "<p>\(outcome(payment.status))</p>")
                    """
                return page(.ok, "Sandbox payment", body)
            }
            guard let decided = try await provider.decide(id, approve: action == "approve") else { return notFound }
            guard decided.before == .open else {
                // Pressed again, or after billingd cancelled it: say what it is.
                return page(.conflict, "Already decided", "<p>\(outcome(decided.before))</p>")
            }
            let done = decided.after == .approved ? "Paid." : "Declined: nothing was charged."
            var response = page(.seeOther, "Done", "<p>\(done) Returning to the shop.</p>")
            response.headers[.location] = decided.returnURL.isEmpty ? "/pay/\(id)" : decided.returnURL
            return response
        } catch {
            // The decision could not be recorded: say so rather than pretend.
            return page(
                .serviceUnavailable,
                "Try again",
                "<p>The sandbox could not record this; nothing changed. Try again.</p>"
            )
        }
    }

    private static func outcome(_ status: SandboxState.Payment.Status) -> String {
        switch status {
        case .open: return "This payment is waiting."
        case .approved: return "This payment is already paid."
        case .declined: return "This payment was declined; nothing was charged."
        case .expired: return "This payment was cancelled or expired before it was paid; nothing was charged."
        }
    }

    private static func escape(_ text: String) -> String { HTMLText.escape(text) }

    private static func page(_ status: HTTPResponse.Status, _ title: String, _ body: String) -> Response {
        let html = """
            <!doctype html><html><head><meta charset="utf-8"><title>\(title)</title></head>
            <body><h1>\(title)</h1>\(body)</body></html>
            """
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }
}
