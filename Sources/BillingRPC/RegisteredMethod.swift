/// A method a server can route to, with its request decoding built in. The
/// generated `registeredMethods` of each service protocol makes these.
public struct RegisteredMethod: Sendable {
    /// The request's bytes, the call, and the largest request the connection
    /// accepts; the response's bytes.
    public typealias UnaryBody =
        @Sendable (_ request: [UInt8], _ context: ServerContext, _ maxRequestBytes: Int) async throws -> [UInt8]
    public typealias StreamingBody =
        @Sendable (
            _ request: [UInt8], _ context: ServerContext, _ maxRequestBytes: Int,
            _ sink: any RawStreamSink
        ) async throws -> Void

    public enum Body: Sendable {
        case unary(UnaryBody)
        case serverStreaming(StreamingBody)
    }

    public let descriptor: MethodDescriptor
    public let body: Body

    public init(descriptor: MethodDescriptor, body: Body) {
        self.descriptor = descriptor
        self.body = body
    }

    public static func unary<Request, Response>(
        _ descriptor: MethodDescriptor,
        deserializer: some MessageDeserializer<Request>,
        serializer: some MessageSerializer<Response>,
        _ handler: @escaping @Sendable (Request, ServerContext) async throws -> Response
    ) -> RegisteredMethod {
        RegisteredMethod(
            descriptor: descriptor,
            body: .unary { bytes, context, maxBytes in
                let request = try MessageCoding.decode(
                    bytes,
                    maxBytes: maxBytes,
                    with: deserializer,
                    failing: .invalidArgument,
                    "request is not a valid"
                )
                return try MessageCoding.encode(
                    try await handler(request, context),
                    with: serializer,
                    failing: .internal
                )
            }
        )
    }

    public static func serverStreaming<Request, Response>(
        _ descriptor: MethodDescriptor,
        deserializer: some MessageDeserializer<Request>,
        serializer: some MessageSerializer<Response>,
        _ handler: @escaping @Sendable (Request, ServerContext, ServerStreamWriter<Response>) async throws -> Void
    ) -> RegisteredMethod {
        RegisteredMethod(
            descriptor: descriptor,
            body: .serverStreaming { bytes, context, maxBytes, sink in
                let request = try MessageCoding.decode(
                    bytes,
                    maxBytes: maxBytes,
                    with: deserializer,
                    failing: .invalidArgument,
                    "request is not a valid"
                )
                try await handler(request, context, ServerStreamWriter(sink: sink, serializer: serializer))
            }
        )
    }
}

/// A service implementation: the generated protocols refine it.
public protocol RPCService: Sendable {
    var registeredMethods: [RegisteredMethod] { get }
}
