public import BillingMessages

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
    func serverStream(_ method: MethodDescriptor, request: [UInt8], options: CallOptions) async throws -> any RawMessageStream
}

/// A typed server stream for `for try await`.
public struct ClientStream<Message: ProtoMessage>: AsyncSequence, Sendable {
    public typealias Element = Message
    let raw: any RawMessageStream

    public init(raw: any RawMessageStream) {
        self.raw = raw
    }

    public func cancel() {
        raw.cancel()
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let raw: any RawMessageStream

        public mutating func next() async throws -> Message? {
            guard let bytes = try await raw.next() else { return nil }
            return try ClientCalls.decodeResponse(Message.self, bytes)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(raw: raw)
    }
}

/// What the generated clients call.
public enum ClientCalls {
    public static func unary<Request: ProtoMessage, Response: ProtoMessage>(
        _ transport: any ClientTransport,
        _ method: MethodDescriptor,
        _ request: Request,
        _ responseType: Response.Type,
        _ options: CallOptions
    ) async throws -> Response {
        let bytes = try await transport.unary(method, request: try encodeRequest(request), options: options)
        return try decodeResponse(Response.self, bytes)
    }

    public static func serverStream<Request: ProtoMessage, Response: ProtoMessage>(
        _ transport: any ClientTransport,
        _ method: MethodDescriptor,
        _ request: Request,
        _ responseType: Response.Type,
        _ options: CallOptions
    ) async throws -> ClientStream<Response> {
        let raw = try await transport.serverStream(method, request: try encodeRequest(request), options: options)
        return ClientStream(raw: raw)
    }

    static func encodeRequest<Request: ProtoMessage>(_ request: Request) throws -> [UInt8] {
        do {
            return try request.serializedBytes()
        } catch {
            throw RPCError(.invalidArgument, "could not encode \(Request.protoName): \(error)")
        }
    }

    static func decodeResponse<Response: ProtoMessage>(_ type: Response.Type, _ bytes: [UInt8]) throws -> Response {
        do {
            return try Response(serializedBytes: bytes, limits: .default)
        } catch {
            throw RPCError(.internal, "server sent an invalid \(Response.protoName): \(error)")
        }
    }
}
