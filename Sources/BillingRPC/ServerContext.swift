/// What a handler knows about its call besides the request message.
public struct ServerContext: Sendable {
    public let method: MethodDescriptor
    public let metadata: Metadata
    public let peer: PeerIdentity
    /// When the caller stops waiting; the server ends the call with
    /// DEADLINE_EXCEEDED then.
    public let deadline: ContinuousClock.Instant?

    public init(method: MethodDescriptor, metadata: Metadata, peer: PeerIdentity, deadline: ContinuousClock.Instant?) {
        self.method = method
        self.metadata = metadata
        self.peer = peer
        self.deadline = deadline
    }

    public var idempotencyKey: String? { metadata[Metadata.Key.idempotencyKey] }
    public var requestID: String? { metadata[Metadata.Key.requestID] }
}
