public import NIOCore

/// Writes frames: header then payload.
///
/// Called on the channel's event loop only. It checks the payload length
/// against the limit again (the decoder of our peer does the same): a
/// handler that produced a larger message is a programmer error upstream,
/// and is refused here rather than sent.
public struct FrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = Frame

    private let limits: WireLimits

    public init(limits: WireLimits) {
        self.limits = limits
    }

    public func encode(data frame: Frame, out: inout ByteBuffer) throws {
        guard frame.payload.readableBytes <= limits.maxFrameBytes else {
            throw WireError.frameTooLarge(
                length: UInt32(clamping: frame.payload.readableBytes),
                limit: limits.maxFrameBytes,
                streamID: frame.streamID
            )
        }
        out.reserveCapacity(minimumWritableBytes: FrameHeader.byteCount + frame.payload.readableBytes)
        out.writeFrameHeader(frame.header)
        var payload = frame.payload
        out.writeBuffer(&payload)
    }
}
