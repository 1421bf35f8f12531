/// Limits on what a peer may send in frames.
public struct WireLimits: Sendable, Hashable {
    /// ttrpc's ceiling: 4 MiB of payload. No peer may be allowed more.
    public static let protocolMaxFrameBytes = 4 << 20

    /// The largest payload accepted, checked from the header before any of the
    /// payload is buffered. At most `protocolMaxFrameBytes`; a deployment may
    /// choose less (billing messages are a few KiB).
    public let maxFrameBytes: Int

    public init(maxFrameBytes: Int = WireLimits.protocolMaxFrameBytes) {
        precondition(
            maxFrameBytes > 0 && maxFrameBytes <= Self.protocolMaxFrameBytes,
            "maxFrameBytes must be 1...4 MiB"
        )
        self.maxFrameBytes = maxFrameBytes
    }
}
