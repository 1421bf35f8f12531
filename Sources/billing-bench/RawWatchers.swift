import BillingAPI
import BillingMessages
import BillingTLS
import BillingWire
import NIOCore
import NIOPosix

/// Watchers of one account without a task or a message queue each: a
/// connection's handler opens `streams` WatchPayments streams once TLS is up,
/// decodes every Data frame's `PaymentEvent` on its event loop, and counts the
/// events and the Paid ones (and the streams that end, which none should
/// while it runs). So the fan-out figure is what billingd takes to deliver, not
/// what 10,000 client tasks in the same process take to wake.
enum RawWatchers {
    /// Opens `count` watchers of `accountID` after `sequence`, `perConnection`
    /// a connection; returns once every stream is sent and returns the channels.
    static func open(
        count: Int,
        perConnection: Int,
        accountID: String,
        after sequence: UInt64,
        port: Int,
        tls: TLSContext,
        group: any EventLoopGroup,
        events: Counter,
        paid: Counter,
        ended: Counter
    ) async throws -> [any Channel] {
        var request = BillingV1.WatchPaymentsRequest()
        request.accountId = accountID
        request.afterSequence = sequence
        var envelope = BillingV1.Request()
        envelope.service = BillingV1.BalanceMethods.watchPayments.service
        envelope.method = BillingV1.BalanceMethods.watchPayments.method
        envelope.payload = try request.serializedBytes()
        let requestBytes = try envelope.serializedBytes()
        var channels: [any Channel] = []
        var remaining = count
        while remaining > 0 {
            let streams = min(perConnection, remaining)
            remaining -= streams
            let ready = group.next().makePromise(of: Void.self)
            let channel = try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        try sync.addHandler(try OpenSSLHandler(context: tls))
                        try sync.addHandler(ByteToMessageHandler(FrameDecoder(limits: WireLimits())))
                        try sync.addHandler(MessageToByteHandler(FrameEncoder(limits: WireLimits())))
                        try sync.addHandler(
                            CountingHandler(
                                streams: streams,
                                request: requestBytes,
                                ready: ready,
                                counters: (events, paid, ended)
                            )
                        )
                    }
                }
                .connect(host: "127.0.0.1", port: port).get()
            try await ready.futureResult.get()
            channels.append(channel)
        }
        return channels
    }

    private final class CountingHandler: ChannelInboundHandler {
        typealias InboundIn = InboundFrame
        typealias OutboundOut = Frame

        let streams: Int
        let request: [UInt8]
        let ready: EventLoopPromise<Void>
        let events: Counter
        let paid: Counter
        let ended: Counter

        init(
            streams: Int,
            request: [UInt8],
            ready: EventLoopPromise<Void>,
            counters: (events: Counter, paid: Counter, ended: Counter)
        ) {
            self.streams = streams
            self.request = request
            self.ready = ready
            (events, paid, ended) = counters
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if event is TLSHandshakeCompleted {
                for index in 0..<streams {
                    context.write(
                        wrapOutboundOut(
                            Frame(
                                streamID: UInt32(2 * index + 1),
                                type: .request,
                                flags: .remoteClosed,
                                payload: context.channel.allocator.buffer(bytes: request)
                            )
                        ),
                        promise: nil
                    )
                }
                context.flush()
                ready.succeed()
            }
            context.fireUserInboundEventTriggered(event)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .frame(let frame) = unwrapInboundIn(data) else { return }
            switch frame.type {
            case .data:
                guard
                    let event = try? BillingV1.PaymentEvent(
                        serializedBytes: frame.payload.readableBytesView,
                        limits: .default
                    )
                else { return }
                events.add()
                if case .paymentStatusChanged(let changed)? = event.event, changed.payment?.status == .paid {
                    paid.add()
                }
            case .response:
                ended.add()
            default:
                break
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            ready.fail(error)
            context.close(promise: nil)
        }
    }
}
