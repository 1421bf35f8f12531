/// Limits applied to bytes from outside before protobuf-c parses them.
public struct DecodeLimits: Sendable, Hashable {
    /// The largest message accepted. 4 MiB is ttrpc's frame ceiling: no payload
    /// inside a frame can be larger, so a larger message is never legitimate.
    public var maxMessageBytes: Int

    /// The deepest nesting of length-delimited fields walked. The billing schema
    /// nests at most 5 levels (Response > PaymentEvent > PaymentStatusChanged >
    /// Payment > Money); 32 leaves room for growth while keeping the validator's
    /// recursion shallow whatever the input claims.
    public var maxDepth: Int

    public init(maxMessageBytes: Int = 4 << 20, maxDepth: Int = 32) {
        precondition(maxMessageBytes > 0 && maxDepth > 0, "limits must be positive")
        self.maxMessageBytes = maxMessageBytes
        self.maxDepth = maxDepth
    }

    public static let `default` = DecodeLimits()
}
