public import NIOCore
internal import NIOHTTP1
internal import NIOPosix

/// The sandbox's "hosted payment page", served by billingd over plain HTTP
/// on loopback (it handles no real money or card data):
///
/// - `GET /pay/<id>`: the amount and two buttons;
/// - `POST /pay/<id>/approve`, `POST /pay/<id>/decline`: decides the payment
///   and redirects (303) to the payment's return URL;
/// - anything else: 404.
///
/// Each connection serves one request and closes: a person clicks twice at
/// most, and nothing here needs keep-alive.
public final class SandboxPageServer: Sendable {
    private let channel: any Channel
    /// E.g. "http://127.0.0.1:7081".
    public let baseURL: String

    private init(channel: any Channel, baseURL: String) {
        self.channel = channel
        self.baseURL = baseURL
    }

    /// Listens on `host`:`port` (0: any free port) and tells `provider` its URL.
    public static func start(host: String, port: Int, provider: SandboxProvider, group: any EventLoopGroup) async throws -> SandboxPageServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(PageHandler(provider: provider))
                }
            }
            .bind(host: host, port: port).get()
        let bound = channel.localAddress?.port ?? port
        let url = "http://\(host.contains(":") ? "[\(host)]" : host):\(bound)"
        provider.setBaseURL(url)
        return SandboxPageServer(channel: channel, baseURL: url)
    }

    public func stop() async {
        try? await channel.close()
    }
}

/// One request per connection; runs on the connection's event loop.
private final class PageHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let provider: SandboxProvider
    private var head: HTTPRequestHead?

    init(provider: SandboxProvider) {
        self.provider = provider
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break // forms carry nothing we need
        case .end:
            guard let head else { return }
            respond(context: context, head)
        }
    }

    /// Reads and decisions are database calls: they run in a task, and the
    /// answer is written back on the event loop.
    private func respond(context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        let parts = head.uri.split(separator: "?", maxSplits: 1).first.map { $0.split(separator: "/") } ?? []
        guard parts.count >= 2, parts.count <= 3, parts[0] == "pay", parts[1].utf8.count <= 64 else {
            return send(context: context, .notFound, html: page(title: "Not found", body: "<p>No such page.</p>"))
        }
        let id = String(parts[1])
        let action = parts.count == 3 ? String(parts[2]) : nil
        let provider = self.provider
        let request = Request(provider: provider, method: head.method, id: id, action: action)
        context.eventLoop.makeFutureWithTask { await request.answer() }.assumeIsolated().whenSuccess { answer in
            self.send(context: context, answer.status, html: self.page(title: answer.title, body: answer.body), headers: answer.headers)
        }
    }

    private struct Request: Sendable {
        let provider: SandboxProvider
        let method: HTTPMethod
        let id: String
        let action: String?

        func answer() async -> Answer {
            await PageHandler.answer(provider: provider, method: method, id: id, action: action)
        }
    }

    private struct Answer: Sendable {
        var status: HTTPResponseStatus
        var title: String
        var body: String
        var headers = HTTPHeaders()
    }

    private static func answer(provider: SandboxProvider, method: HTTPMethod, id: String, action: String?) async -> Answer {
        let notFound = Answer(status: .notFound, title: "Not found", body: "<p>No such payment.</p>")
        do {
            switch (method, action) {
            case (.GET, nil):
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
                return Answer(status: .ok, title: "Sandbox payment", body: body)
            case (.POST, "approve"?), (.POST, "decline"?):
                guard let decided = try await provider.decide(id, approve: action == "approve") else { return notFound }
                guard decided.before == .open else {
                    // Pressed again, or after billingd cancelled it: say what it is.
                    return Answer(status: .conflict, title: "Already decided", body: "<p>\(outcome(decided.before))</p>")
                }
                var headers = HTTPHeaders()
                headers.add(name: "Location", value: decided.returnURL.isEmpty ? "/pay/\(id)" : decided.returnURL)
                let done = decided.after == .approved ? "Paid." : "Declined: nothing was charged."
                return Answer(status: .seeOther, title: "Done", body: "<p>\(done) Returning to the shop.</p>", headers: headers)
            default:
                return Answer(status: .methodNotAllowed, title: "Not allowed", body: "<p>Use the buttons.</p>")
            }
        } catch {
            // The decision could not be recorded: say so rather than pretend.
            return Answer(status: .serviceUnavailable, title: "Try again", body: "<p>The sandbox could not record this; nothing changed. Try again.</p>")
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

    private static func escape(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    private func page(title: String, body: String) -> String {
        """
        <!doctype html><html><head><meta charset="utf-8"><title>\(title)</title></head>
        <body><h1>\(title)</h1>\(body)</body></html>
        """
    }

    private func send(context: ChannelHandlerContext, _ status: HTTPResponseStatus, html: String, headers extra: HTTPHeaders = HTTPHeaders()) {
        var headers = extra
        let body = context.channel.allocator.buffer(string: html)
        headers.add(name: "Content-Type", value: "text/html; charset=utf-8")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Connection", value: "close")
        headers.add(name: "Cache-Control", value: "no-store")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }
}
