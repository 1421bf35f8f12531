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

    private func respond(context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        let parts = head.uri.split(separator: "?", maxSplits: 1).first.map { $0.split(separator: "/") } ?? []
        guard parts.count >= 2, parts[0] == "pay", parts[1].utf8.count <= 64 else {
            return send(context: context, .notFound, html: page(title: "Not found", body: "<p>No such page.</p>"))
        }
        let id = String(parts[1])
        switch (head.method, parts.count == 3 ? String(parts[2]) : nil) {
        case (.GET, nil):
            guard let payment = provider.page(id) else {
                return send(context: context, .notFound, html: page(title: "Not found", body: "<p>No such payment.</p>"))
            }
            let decided = payment.status != "open"
            let body = """
                <p class="amount">\(payment.amount) \(payment.currency)</p>
                <p>Sandbox payment <code>\(id)</code>: \(payment.status)\(payment.saveMethod ? ", the card will be saved" : "").</p>
                \(decided ? "" : """
                <form method="post" action="/pay/\(id)/approve"><button type="submit">Pay</button></form>
                <form method="post" action="/pay/\(id)/decline"><button type="submit">Decline</button></form>
                """)
                """
            send(context: context, .ok, html: page(title: "Sandbox payment", body: body))
        case (.POST, "approve"?), (.POST, "decline"?):
            guard let returnURL = provider.decide(id, approve: parts[2] == "approve") else {
                return send(context: context, .notFound, html: page(title: "Not found", body: "<p>No such payment.</p>"))
            }
            var headers = HTTPHeaders()
            headers.add(name: "Location", value: returnURL.isEmpty ? "/pay/\(id)" : returnURL)
            send(context: context, .seeOther, html: page(title: "Done", body: "<p>Returning to the shop.</p>"), headers: headers)
        default:
            send(context: context, .methodNotAllowed, html: page(title: "Not allowed", body: "<p>Use the buttons.</p>"))
        }
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
