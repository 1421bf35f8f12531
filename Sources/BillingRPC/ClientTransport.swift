/// Options of one call.
public struct CallOptions: Sendable {
    /// How long the caller waits; sent as ttrpc's `timeout_nano`. nil: no deadline.
    public var timeout: Duration?
    public var metadata: Metadata

    public init(timeout: Duration? = nil, metadata: Metadata = Metadata()) {
        self.timeout = timeout
        self.metadata = metadata
    }

    /// Sets the idempotency key, replacing metadata entries of that name.
    public func idempotencyKey(_ key: String) -> CallOptions {
        var copy = self
        copy.metadata = Metadata(metadata.entries.filter { $0.key != Metadata.Key.idempotencyKey })
        copy.metadata.add(Metadata.Key.idempotencyKey, key)
        return copy
    }
}

/// The bytes of a server stream as a transport delivers them.
public protocol RawMessageStream: Sendable {
    /// The next message, nil at the stream's successful end.
    /// - Throws: `RPCError` with the status the stream ended with.
    func next() async throws -> [UInt8]?
    /// Stops the stream; later `next` calls return nil or throw CANCELLED.
    func cancel()
}

/// Carries calls to a server. The ttrpc-over-TLS client implements it; so
/// does `InProcessTransport`, which calls a router directly.
public protocol ClientTransport: Sendable {
    func unary(_ method: MethodDescriptor, request: [UInt8], options: CallOptions) async throws -> [UInt8]
    func serverStream(
        _ method: MethodDescriptor,
        request: [UInt8],
        options: CallOptions
    ) async throws -> any RawMessageStream
}

/// A typed server stream for `for try await`.
public struct ClientStream<Message>: AsyncSequence, Sendable {
    public typealias Element = Message
    let raw: any RawMessageStream
    let deserializer: any MessageDeserializer<Message>

    public init(raw: any RawMessageStream, deserializer: some MessageDeserializer<Message>) {
        self.raw = raw
        self.deserializer = deserializer
    }

    public func cancel() {
        raw.cancel()
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let raw: any RawMessageStream
        let deserializer: any MessageDeserializer<Message>

        public mutating func next() async throws -> Message? {
            guard let bytes = try await raw.next() else { return nil }
            return try ClientCalls.decodeResponse(bytes, deserializer)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(raw: raw, deserializer: deserializer)
    }
}

/// What the generated clients call (through the API module's protobuf
/// overloads).
public enum ClientCalls {
    public static func unary<Request, Response>(
        _ transport: any ClientTransport,
        _ method: MethodDescriptor,
        _ request: Request,
        serializer: some MessageSerializer<Request>,
        deserializer: some MessageDeserializer<Response>,
        _ options: CallOptions
    ) async throws -> Response {
        let bytes = try await transport.unary(method, request: try encodeRequest(request, serializer), options: options)
        return try decodeResponse(bytes, deserializer)
    }

    public static func serverStream<Request, Response>(
        _ transport: any ClientTransport,
        _ method: MethodDescriptor,
        _ request: Request,
        serializer: some MessageSerializer<Request>,
        deserializer: some MessageDeserializer<Response>,
        _ options: CallOptions
    ) async throws -> ClientStream<Response> {
        let raw = try await transport.serverStream(
            method,
            request: try encodeRequest(request, serializer),
            options: options
        )
        return ClientStream(raw: raw, deserializer: deserializer)
    }

    /// The largest response a client decodes: ttrpc's frame ceiling.
    public static let maxResponseBytes = 4 << 20

    static func encodeRequest<Request>(
        _ request: Request,
        _ serializer: some MessageSerializer<Request>
    ) throws(RPCError) -> [UInt8] {
        try MessageCoding.encode(request, with: serializer, failing: .invalidArgument)
    }

    static func decodeResponse<Response>(
        _ bytes: [UInt8],
        _ deserializer: some MessageDeserializer<Response>
    ) throws(RPCError) -> Response {
        try MessageCoding.decode(
            bytes,
            maxBytes: maxResponseBytes,
            with: deserializer,
            failing: .internal,
            "server sent an invalid"
        )
    }
}
