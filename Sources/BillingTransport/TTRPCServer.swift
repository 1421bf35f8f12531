public import BillingRPC
public import BillingTLS
internal import BillingWire
public import NIOCore
internal import NIOPosix
internal import Synchronization

/// The ttrpc-over-TLS server: accepts connections, runs the pipeline
/// TLS → frames → `ServerConnectionHandler`, and shuts down gracefully.
///
/// Thread-safe: the connection registry is behind a mutex; everything per
/// connection happens on that connection's event loop.
public final class TTRPCServer: Sendable {
    private let channel: any Channel
    private let registry: Registry

    /// The address it listens on (with the real port when 0 was asked for).
    public var localAddress: SocketAddress? { channel.localAddress }

    /// The TLS context new connections take; replaced by `replaceTLS`.
    private final class CurrentTLS: Sendable {
        let context: Mutex<TLSContext>
        init(_ context: TLSContext) { self.context = Mutex(context) }
    }

    private final class Registry: Sendable {
        let connections = Mutex<[ObjectIdentifier: (any Channel, NIOLoopBound<ServerConnectionHandler>)]>([:])
    }

    /// Who may stay connected (limits per state, per peer, the privileged reserve).
    public let admission: ConnectionAdmission

    private let tls: CurrentTLS

    private init(channel: any Channel, registry: Registry, admission: ConnectionAdmission, tls: CurrentTLS) {
        self.channel = channel
        self.registry = registry
        self.admission = admission
        self.tls = tls
    }

    /// New connections handshake with `context` (a rotated certificate, key
    /// or client CA); connections already open keep the one they began with.
    public func replaceTLS(_ context: TLSContext) {
        tls.context.withLock { $0 = context }
    }

    /// Binds and starts serving.
    ///
    /// - Parameters:
    ///   - host, port: where to listen; port 0 picks a free one.
    ///   - tls: a server-role context (mutual TLS).
    ///   - services: what to route to.
    ///   - observer: told of every call's end (metrics).
    ///   - classify: which verified peers may use the connections reserved
    ///     for privileged ones (`ServerLimits.reservedPrivilegedConnections`).
    public static func start(
        host: String,
        port: Int,
        tls: TLSContext,
        services: [any RPCService],
        limits: ServerLimits = ServerLimits(),
        classify: @escaping ConnectionAdmission.Classify = { _ in .ordinary },
        observer: (any ServerCallObserver)? = nil,
        group: any EventLoopGroup
    ) async throws -> TTRPCServer {
        let router = MethodRouter(services: services)
        let registry = Registry()
        let current = CurrentTLS(tls)
        let admission = ConnectionAdmission(limits: limits, classify: classify)
        let wire = WireLimits(maxFrameBytes: limits.maxFrameBytes)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 32 << 10, high: 256 << 10))
            .childChannelInitializer { channel in
                // A full waiting room closes its oldest: only connections that
                // never handshake are slow enough to be the oldest.
                admission.accepted(channel)?.close(promise: nil)
                let key = ObjectIdentifier(channel)
                channel.closeFuture.whenComplete { _ in
                    admission.closed(channel)
                    _ = registry.connections.withLock { $0.removeValue(forKey: key) }
                }
                return channel.eventLoop.makeCompletedFuture {
                    let handler = ServerConnectionHandler(
                        router: router,
                        limits: limits,
                        admission: admission,
                        observer: observer
                    )
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(try OpenSSLHandler(context: current.context.withLock { $0 }))
                    try sync.addHandler(ByteToMessageHandler(FrameDecoder(limits: wire)))
                    try sync.addHandler(MessageToByteHandler(FrameEncoder(limits: wire)))
                    // The idle timer starts after the handshake (ServerConnectionHandler
                    // adds it then): the handshake has its own timeout.
                    try sync.addHandler(handler)
                    let bound = NIOLoopBound(handler, eventLoop: channel.eventLoop)
                    registry.connections.withLock { $0[key] = (channel, bound) }
                }
            }
        let channel = try await bootstrap.bind(host: host, port: port).get()
        return TTRPCServer(channel: channel, registry: registry, admission: admission, tls: current)
    }

    /// Stops accepting, tells clients (GOAWAY extension), lets running calls
    /// finish for up to `grace`, then ends what remains with UNAVAILABLE and
    /// closes every connection.
    public func shutdown(grace: Duration) async {
        try? await channel.close()
        let connections = registry.connections.withLock { Array($0.values) }
        for (channel, handler) in connections {
            channel.eventLoop.execute { handler.value.beginDraining() }
        }
        let deadline = ContinuousClock.now.advanced(by: grace)
        while ContinuousClock.now < deadline, registry.connections.withLock({ !$0.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let remaining = registry.connections.withLock { Array($0.values) }
        for (channel, handler) in remaining {
            channel.eventLoop.execute { handler.value.terminate() }
        }
        for (channel, _) in remaining {
            try? await channel.closeFuture.get()
        }
    }

    /// Connections open now.
    public var connectionCount: Int {
        registry.connections.withLock { $0.count }
    }
}
