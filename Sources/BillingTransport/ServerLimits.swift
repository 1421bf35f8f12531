/// Every limit the server applies to what comes from outside, each with why
/// it has its value. docs/PROTOCOL.md lists them for client authors.
public struct ServerLimits: Sendable, Hashable {
    /// Payload bytes of one frame. ttrpc's 4 MiB; billing messages are a few
    /// KiB, so a deployment may lower it.
    public var maxFrameBytes: Int = 4 << 20
    /// Bytes of request metadata (keys plus values). 8 KiB holds a request
    /// id, an idempotency key and tracing headers many times over.
    public var maxMetadataBytes: Int = 8 << 10
    /// Streams open at once on one connection. 128 lets a busy internal
    /// service pipeline calls; more is a client that never waits.
    public var maxConcurrentStreams: Int = 128
    /// Authenticated connections open at once. Each costs a TLS session
    /// (~50 KiB); 1,024 stays far inside the file-descriptor and memory budget
    /// of one instance.
    public var maxConnections: Int = 1024
    /// Of `maxConnections`, the last ones only privileged peers (internal
    /// services, operators) may take: 128, so that account-scoped clients,
    /// however many, never lock out the services that run the business. At
    /// least one connection always stays open to ordinary peers.
    public var reservedPrivilegedConnections: Int = 128
    /// Connections of one certificate identity. 256 is more than any service
    /// pool needs (each connection multiplexes 128 streams); a client past it
    /// is leaking connections, and it must not fill the server.
    public var maxConnectionsPerPeer: Int = 256
    /// Connections still in their TLS handshake. A real handshake takes
    /// milliseconds; 128 waiting at once is already a flood, and a new one
    /// past it closes the oldest waiting one (see `ConnectionAdmission`).
    public var maxUnauthenticatedConnections: Int = 128
    /// A connection with no stream and no frame for this long is closed:
    /// callers reconnect cheaply, idle sockets cost memory.
    public var idleTimeout: Duration = .seconds(300)
    /// A server-stream write that cannot be handed to the socket for this long
    /// means the client stopped reading: the stream ends RESOURCE_EXHAUSTED
    /// (it resumes from its cursor) instead of holding memory.
    public var streamWriteTimeout: Duration = .seconds(30)
    /// A request without `timeout_nano` gets this deadline for unary calls;
    /// no call should hold a handler longer. Streams have none by default.
    public var defaultUnaryDeadline: Duration = .seconds(60)

    public init() {}
}
