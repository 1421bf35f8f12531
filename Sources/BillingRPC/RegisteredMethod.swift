public import BillingMessages

/// A method a server can route to, with its request decoding built in. The
/// generated `registeredMethods` of each service protocol makes these.
public struct RegisteredMethod: Sendable {
    public typealias UnaryBody = @Sendable (_ request: [UInt8], _ context: ServerContext, _ limits: DecodeLimits) async throws -> [UInt8]
    public typealias StreamingBody = @Sendable (_ request: [UInt8], _ context: ServerContext, _ limits: DecodeLimits, _ sink: any RawStreamSink) async throws -> Void

    public enum Body: Sendable {
        case unary(UnaryBody)
        case serverStreaming(StreamingBody)
    }

    public let descriptor: MethodDescriptor
    public let body: Body

    public static func unary<Request: ProtoMessage, Response: ProtoMessage>(
        _ descriptor: MethodDescriptor,
        _ requestType: Request.Type,
        _ handler: @escaping @Sendable (Request, ServerContext) async throws -> Response
    ) -> RegisteredMethod {
        RegisteredMethod(descriptor: descriptor, body: .unary { bytes, context, limits in
            let request = try decodeRequest(Request.self, bytes, limits)
            let response = try await handler(request, context)
            do {
                return try response.serializedBytes()
            } catch {
                throw RPCError(.internal, "could not encode \(Response.protoName): \(error)")
            }
        })
    }

    public static func serverStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ descriptor: MethodDescriptor,
        _ requestType: Request.Type,
        _ handler: @escaping @Sendable (Request, ServerContext, ServerStreamWriter<Response>) async throws -> Void
    ) -> RegisteredMethod {
        RegisteredMethod(descriptor: descriptor, body: .serverStreaming { bytes, context, limits, sink in
            let request = try decodeRequest(Request.self, bytes, limits)
            try await handler(request, context, ServerStreamWriter(sink: sink))
        })
    }

    private static func decodeRequest<Request: ProtoMessage>(_ type: Request.Type, _ bytes: [UInt8], _ limits: DecodeLimits) throws -> Request {
        do {
            return try Request(serializedBytes: bytes, limits: limits)
        } catch {
            throw RPCError(.invalidArgument, "request is not a valid \(Request.protoName): \(error)")
        }
    }
}

/// A service implementation: the generated protocols refine it.
public protocol RPCService: Sendable {
    var registeredMethods: [RegisteredMethod] { get }
}
