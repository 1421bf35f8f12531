public import BillingRPC
public import BillingTLS
internal import BillingWire
public import NIOCore
internal import NIOPosix
internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#endif

/// A `ClientTransport` over one multiplexed ttrpc-over-TLS connection,
/// opened on first use and again after it closes (or the server sends
/// GOAWAY). Every call of the generated clients goes through it.
///
/// Thread-safe: the current connection sits behind a mutex; each call runs on
/// the connection's event loop.
public final class TTRPCClient: ClientTransport {
    public let host: String
    public let port: Int
    private let tls: TLSContext
    private let group: any EventLoopGroup
    private let limits: WireLimits
    private let connectTimeout: Duration
    private let streamStallTimeout: Duration
    private let maxBufferedStreamMessages: Int
    private let permits: StreamPermits
    /// The current connection, or the attempt to make one: concurrent first
    /// calls wait for the same attempt instead of each dialling.
    private let state = Mutex<Task<Connection, any Error>?>(nil)

    private struct Connection: Sendable {
        let channel: any Channel
        let handler: NIOLoopBound<ClientConnectionHandler>
        let ready: EventLoopFuture<Void>
    }

    /// - Parameters:
    ///   - tls: a client-role context (its server name is checked).
    ///   - maxBufferedStreamMessages: a server stream whose consumer falls this
    ///     far behind ends RESOURCE_EXHAUSTED instead of growing memory.
    ///   - maxConcurrentStreams: calls beyond this wait for a free stream
    ///     rather than exceed the server's limit (128 by default on billingd).
    ///   - streamStallTimeout: how long a stream whose consumer stopped taking
    ///     messages (its buffer full) may hold the connection's reads before it
    ///     is ended RESOURCE_EXHAUSTED (the caller resumes from its cursor).
    public init(
        host: String,
        port: Int,
        tls: TLSContext,
        group: any EventLoopGroup,
        maxFrameBytes: Int = 4 << 20,
        connectTimeout: Duration = .seconds(10),
        maxBufferedStreamMessages: Int = 1024,
        maxConcurrentStreams: Int = 100,
        streamStallTimeout: Duration = .seconds(10)
    ) {
        self.streamStallTimeout = streamStallTimeout
        self.permits = StreamPermits(maxConcurrentStreams)
        self.host = host
        self.port = port
        self.tls = tls
        self.group = group
        self.limits = WireLimits(maxFrameBytes: maxFrameBytes)
        self.connectTimeout = connectTimeout
        self.maxBufferedStreamMessages = maxBufferedStreamMessages
    }

    /// Closes the connection; calls in flight end UNAVAILABLE.
    public func close() async {
        let attempt = state.withLock { current -> Task<Connection, any Error>? in
            defer { current = nil }
            return current
        }
        try? await attempt?.value.channel.close()
    }

    private func connection() async throws -> Connection {
        while true {
            let attempt = state.withLock { current -> Task<Connection, any Error> in
                if let current { return current }
                let attempt = Task { try await self.connectAndHandshake() }
                current = attempt
                return attempt
            }
            do {
                let connection = try await attempt.value
                let usable = try await connection.channel.eventLoop.submit { connection.handler.value.isUsable }.get()
                if usable { return connection }
            } catch {
                forget(attempt)
                throw error
            }
            // Closed or going away: forget it and dial again.
            forget(attempt)
        }
    }

    private func forget(_ attempt: Task<Connection, any Error>) {
        state.withLock { current in
            if current == attempt { current = nil }
        }
    }

    private func connectAndHandshake() async throws -> Connection {
        let connection = try await connect()
        do {
            try await connection.ready.get()
        } catch let error as RPCError {
            throw error
        } catch {
            throw RPCError(.unavailable, "TLS handshake with \(host):\(port) failed: \(error)")
        }
        return connection
    }

    private func connect() async throws -> Connection {
        let tls = self.tls
        let limits = self.limits
        let buffered = maxBufferedStreamMessages
        let stall = TimeAmount(streamStallTimeout)
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(TimeAmount(connectTimeout))
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(try OpenSSLHandler(context: tls))
                    try sync.addHandler(ByteToMessageHandler(FrameDecoder(limits: limits)))
                    try sync.addHandler(MessageToByteHandler(FrameEncoder(limits: limits)))
                    try sync.addHandler(
                        ClientConnectionHandler(
                            ready: channel.eventLoop.makePromise(),
                            maxBufferedStreamMessages: buffered,
                            stallTimeout: stall
                        )
                    )
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: host, port: port).get()
        } catch {
            throw RPCError(.unavailable, "cannot connect to \(host):\(port): \(Self.reason(error))")
        }
        do {
            return try await channel.eventLoop.submit {
                let handler = try channel.pipeline.syncOperations.handler(type: ClientConnectionHandler.self)
                return Connection(
                    channel: channel,
                    handler: NIOLoopBound(handler, eventLoop: channel.eventLoop),
                    ready: handler.readyFuture
                )
            }.get()
        } catch {
            // The server closed it at once (for example: over its connection limit).
            throw RPCError(.unavailable, "connection to \(host):\(port) closed before it was ready")
        }
    }

    /// The cause a person can act on, not NIO's nested description.
    static func reason(_ error: any Error) -> String {
        if let connection = error as? NIOConnectionError {
            if connection.dnsAError != nil && connection.connectionErrors.isEmpty {
                return "the host name does not resolve"
            }
            if let first = connection.connectionErrors.first { return reason(first.error) }
        }
        if let io = error as? IOError {
            switch io.errnoCode {
            case ECONNREFUSED: return "connection refused (is billingd running there?)"
            case ETIMEDOUT: return "timed out"
            case EHOSTUNREACH, ENETUNREACH: return "host unreachable"
            default: return io.description
            }
        }
        if error is ChannelError { return "connect timed out" }
        return "\(error)"
    }

    /// How often a call the server never processed is sent again on a new
    /// connection (a connection closing under it: idle timeout, shutdown).
    static let unprocessedRetries = 3

    public func unary(_ method: MethodDescriptor, request: [UInt8], options: CallOptions) async throws -> [UInt8] {
        try await permits.acquire()
        defer { permits.release() }
        for attempt in 1...Self.unprocessedRetries {
            do {
                return try await unaryOnce(method, request: request, options: options)
            } catch is NotProcessed where attempt < Self.unprocessedRetries {
                continue
            } catch is NotProcessed {
                throw RPCError(.unavailable, "the server closed connections before taking the call; retry")
            }
        }
        preconditionFailure("the loop returns or throws")
    }

    private func unaryOnce(_ method: MethodDescriptor, request: [UInt8], options: CallOptions) async throws -> [UInt8] {
        let connection = try await connection()
        let loop = connection.channel.eventLoop
        let handler = connection.handler
        let streamID = StreamIDBox()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[UInt8], any Error>) in
                loop.execute {
                    do {
                        let id = try handler.value.start(
                            method,
                            request: request,
                            options: options,
                            waiter: .unary(continuation)
                        )
                        streamID.value.withLock { $0 = id }
                        if let timeout = options.timeout {
                            loop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) {
                                handler.value.cancel(id, RPCError(.deadlineExceeded, "deadline exceeded"))
                            }
                        }
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }
            }
        } onCancel: {
            loop.execute {
                if let id = streamID.value.withLock({ $0 }) {
                    handler.value.cancel(id, RPCError(.cancelled, "call cancelled"))
                }
            }
        }
    }

    public func serverStream(
        _ method: MethodDescriptor,
        request: [UInt8],
        options: CallOptions
    ) async throws -> any RawMessageStream {
        try await permits.acquire()
        for attempt in 1...Self.unprocessedRetries {
            do {
                return try await serverStreamOnce(method, request: request, options: options)
            } catch is NotProcessed where attempt < Self.unprocessedRetries {
                continue
            } catch is NotProcessed {
                permits.release()
                throw RPCError(.unavailable, "the server closed connections before taking the call; retry")
            } catch {
                permits.release()
                throw error
            }
        }
        preconditionFailure("the loop returns or throws")
    }

    /// Opens the stream; on error the caller releases the permit.
    private func serverStreamOnce(
        _ method: MethodDescriptor,
        request: [UInt8],
        options: CallOptions
    ) async throws -> any RawMessageStream {
        let permits = self.permits
        let connection = try await self.connection()
        let loop = connection.channel.eventLoop
        let handler = connection.handler
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: [UInt8].self)
        let id = try await loop.submit {
            let id = try handler.value.start(method, request: request, options: options, waiter: .stream(continuation))
            if let timeout = options.timeout {
                loop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) {
                    handler.value.cancel(id, RPCError(.deadlineExceeded, "deadline exceeded"))
                }
            }
            return id
        }.get()
        return ClientRawStream(
            stream: stream,
            onConsume: {
                loop.execute { handler.value.consumed(id) }
            },
            onCancel: {
                loop.execute { handler.value.cancel(id, RPCError(.cancelled, "stream cancelled")) }
            },
            onEnd: {
                permits.release()
            }
        )
    }
}

/// Messages of one server stream, as the connection delivers them.
private final class ClientRawStream: RawMessageStream, @unchecked Sendable {
    // One consumer at a time (AsyncSequence's contract), so the iterator
    // needs no lock; @unchecked only lets a Sendable reference reach it.
    private var iterator: AsyncThrowingStream<[UInt8], any Error>.AsyncIterator
    private let onConsume: @Sendable () -> Void
    private let onCancel: @Sendable () -> Void
    private let onEnd: @Sendable () -> Void
    private let finished = Atomic<Bool>(false)

    init(
        stream: AsyncThrowingStream<[UInt8], any Error>,
        onConsume: @escaping @Sendable () -> Void,
        onCancel: @escaping @Sendable () -> Void,
        onEnd: @escaping @Sendable () -> Void
    ) {
        self.iterator = stream.makeAsyncIterator()
        self.onConsume = onConsume
        self.onCancel = onCancel
        self.onEnd = onEnd
    }

    /// Marks the stream ended, once; true for the caller that did.
    private func end() -> Bool {
        guard !finished.exchange(true, ordering: .relaxed) else { return false }
        onEnd()
        return true
    }

    func next() async throws -> [UInt8]? {
        do {
            let element = try await iterator.next()
            if element != nil {
                onConsume()
            } else if Task.isCancelled {
                // The consumer's task was cancelled: the iterator ends with
                // nil, but the server is still sending; tell it to stop.
                cancel()
            } else {
                _ = end()
            }
            return element
        } catch is NotProcessed {
            _ = end()
            throw RPCError(.unavailable, "the server closed the connection before taking the stream; open it again")
        } catch {
            _ = end()
            throw error
        }
    }

    func cancel() {
        if end() { onCancel() }
    }

    deinit {
        // Dropped before its end: tell the server to stop sending.
        if end() { onCancel() }
    }
}

/// The stream id of a unary call, set on the event loop, read by the
/// cancellation handler on any thread.
private final class StreamIDBox: Sendable {
    let value = Mutex<UInt32?>(nil)
}

/// Counts the streams a client has open and makes callers past the limit
/// wait, in arrival order.
final class StreamPermits: Sendable {
    private struct State {
        var available: Int
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>

    init(_ count: Int) {
        precondition(count > 0, "at least one stream")
        state = Mutex(State(available: count))
    }

    func acquire() async throws {
        try Task.checkCancellation()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { state -> Bool in
                if state.available > 0 {
                    state.available -= 1
                    return true
                }
                state.waiting.append(continuation)
                return false
            }
            if granted { continuation.resume() }
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiting.isEmpty {
                state.available += 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
