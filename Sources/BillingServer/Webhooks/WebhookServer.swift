internal import BillingCore
internal import Foundation
internal import Logging
internal import NIOCore
internal import NIOHTTP1
internal import NIOPosix

/// The HTTP endpoint payment systems deliver webhooks to: `POST /webhooks/<system>`.
///
/// Plain HTTP on the configured address: in production it sits behind the
/// TLS-terminating proxy the payment system reaches (Stripe requires HTTPS).
/// Bodies over `maxBodyBytes` are refused with 413 before they are read
/// whole; a connection silent for 10 s is closed; one request per connection.
public final class WebhookServer: Sendable {
    struct Request: Sendable {
        let headers: HTTPHeaders
        let body: [UInt8]
    }

    struct Response: Sendable {
        let status: HTTPResponseStatus
        let message: String
    }

    typealias Route = @Sendable (Request) async -> Response

    private let channel: any Channel

    /// The port actually bound (for port 0).
    public var port: Int { channel.localAddress?.port ?? 0 }

    private init(channel: any Channel) {
        self.channel = channel
    }

    static func start(host: String, port: Int, routes: [String: Route], maxBodyBytes: Int, group: any EventLoopGroup) async throws -> WebhookServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // A sender that stops sending is dropped, not waited for.
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: .seconds(10)))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(WebhookHandler(routes: routes, maxBodyBytes: maxBodyBytes))
                }
            }
            .bind(host: host, port: port).get()
        return WebhookServer(channel: channel)
    }

    public func stop() async {
        try? await channel.close()
    }
}

extension WebhookServer {
    /// What every verified event leads to: the payment it names is checked at
    /// its payment system now (the poller's check, through the one
    /// transition). 200 once checked, or when it names no payment of ours;
    /// 503 when the payment system could not be asked, so it delivers again
    /// later (the poller checks meanwhile).
    static func check(_ paymentID: String?, system: PaymentSystem, event: String, flows: PaymentFlows, logger: Logger) async -> Response {
        guard let paymentID else { return Response(status: .ok, message: "no payment of ours") }
        do {
            guard let after = try await flows.check(paymentID: paymentID, system: system) else {
                return Response(status: .ok, message: "no \(system.rawValue) payment of ours")
            }
            logger.info("webhook", metadata: ["system": "\(system.rawValue)", "event": "\(event)", "payment": "\(paymentID)",
                                              "status": "\(after.status)"])
            return Response(status: .ok, message: "payment \(paymentID) is \(after.status)")
        } catch {
            logger.warning("webhook: checking the payment failed", metadata: ["payment": "\(paymentID)", "error": "\(error)"])
            return Response(status: .serviceUnavailable, message: "the payment could not be checked now")
        }
    }
}

/// Collects one request (bounded), hands it to its route off the event
/// loop, and writes the answer back on it.
private final class WebhookHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let routes: [String: WebhookServer.Route]
    private let maxBodyBytes: Int
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var answered = false

    init(routes: [String: WebhookServer.Route], maxBodyBytes: Int) {
        self.routes = routes
        self.maxBodyBytes = maxBodyBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            if let length = head.headers.first(name: "Content-Length").flatMap(Int.init), length > maxBodyBytes {
                respond(context: context, WebhookServer.Response(status: .payloadTooLarge, message: "the body is over \(maxBodyBytes) bytes"))
            }
        case .body(let buffer):
            guard body.count + buffer.readableBytes <= maxBodyBytes else {
                return respond(context: context, WebhookServer.Response(status: .payloadTooLarge, message: "the body is over \(maxBodyBytes) bytes"))
            }
            body += buffer.readableBytesView
        case .end:
            guard let head else { return }
            let path = String(head.uri.split(separator: "?", maxSplits: 1).first ?? "")
            guard let route = routes[path] else {
                return respond(context: context, WebhookServer.Response(status: .notFound, message: "no such webhook"))
            }
            guard head.method == .POST else {
                return respond(context: context, WebhookServer.Response(status: .methodNotAllowed, message: "webhooks are POSTed"))
            }
            answered = true
            let request = WebhookServer.Request(headers: head.headers, body: body)
            let channel = context.channel
            Task { [route, request, channel] in
                writeResponse(await route(request), to: channel)
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent, !answered {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func respond(context: ChannelHandlerContext, _ response: WebhookServer.Response) {
        answered = true
        writeResponse(response, to: context.channel)
    }
}

/// From any thread: the channel's pipeline orders the writes on its loop.
private func writeResponse(_ response: WebhookServer.Response, to channel: any Channel) {
    let json = (try? JSONSerialization.data(withJSONObject: ["message": response.message])) ?? Data("{}".utf8)
    let body = channel.allocator.buffer(bytes: json + Data("\n".utf8))
    var headers = HTTPHeaders()
    headers.add(name: "Content-Type", value: "application/json")
    headers.add(name: "Content-Length", value: String(body.readableBytes))
    headers.add(name: "Connection", value: "close")
    channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers)), promise: nil)
    channel.write(HTTPServerResponsePart.body(.byteBuffer(body)), promise: nil)
    channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in
        channel.close(promise: nil)
    }
}
