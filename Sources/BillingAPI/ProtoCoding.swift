public import BillingMessages
public import BillingRPC

/// protobuf-c's wire format for the RPC core: the generated stubs register
/// and call methods through these.
public struct ProtoSerializer<Message: ProtoMessage>: MessageSerializer {
    public init() {}

    public func serialize(_ message: Message) throws -> [UInt8] {
        try message.serializedBytes()
    }
}

public struct ProtoDeserializer<Message: ProtoMessage>: MessageDeserializer {
    public init() {}

    public func deserialize(_ bytes: [UInt8], maxBytes: Int) throws -> Message {
        try Message(serializedBytes: bytes, limits: DecodeLimits(maxMessageBytes: maxBytes))
    }
}

extension RegisteredMethod {
    public static func unary<Request: ProtoMessage, Response: ProtoMessage>(
        _ descriptor: MethodDescriptor,
        _ requestType: Request.Type,
        _ handler: @escaping @Sendable (Request, ServerContext) async throws -> Response
    ) -> RegisteredMethod {
        unary(descriptor, deserializer: ProtoDeserializer<Request>(), serializer: ProtoSerializer<Response>(), handler)
    }

    public static func serverStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ descriptor: MethodDescriptor,
        _ requestType: Request.Type,
        _ handler: @escaping @Sendable (Request, ServerContext, ServerStreamWriter<Response>) async throws -> Void
    ) -> RegisteredMethod {
        serverStreaming(
            descriptor,
            deserializer: ProtoDeserializer<Request>(),
            serializer: ProtoSerializer<Response>(),
            handler
        )
    }
}

extension ClientCalls {
    public static func unary<Request: ProtoMessage, Response: ProtoMessage>(
        _ transport: any ClientTransport,
        _ method: MethodDescriptor,
        _ request: Request,
        _ responseType: Response.Type,
        _ options: CallOptions
    ) async throws -> Response {
        try await unary(
            transport,
            method,
            request,
            serializer: ProtoSerializer<Request>(),
            deserializer: ProtoDeserializer<Response>(),
            options
        )
    }

    public static func serverStream<Request: ProtoMessage, Response: ProtoMessage>(
        _ transport: any ClientTransport,
        _ method: MethodDescriptor,
        _ request: Request,
        _ responseType: Response.Type,
        _ options: CallOptions
    ) async throws -> ClientStream<Response> {
        try await serverStream(
            transport,
            method,
            request,
            serializer: ProtoSerializer<Request>(),
            deserializer: ProtoDeserializer<Response>(),
            options
        )
    }
}
