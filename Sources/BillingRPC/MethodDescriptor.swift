/// Names one method as the wire does: `service` and `method` of the ttrpc Request.
public struct MethodDescriptor: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        case unary
        case serverStreaming
    }

    /// Fully qualified, e.g. "billing.v1.Balance".
    public let service: String
    /// E.g. "GetBalance".
    public let method: String
    public let kind: Kind

    public init(service: String, method: String, kind: Kind) {
        self.service = service
        self.method = method
        self.kind = kind
    }

    /// "/billing.v1.Balance/GetBalance", as gRPC writes a path.
    public var description: String { "/\(service)/\(method)" }
}
