public import NIOCore

/// What the decoder hands on: a whole frame, or the header of one that was too
/// large, whose payload it skips without buffering.
public enum InboundFrame: Hashable, Sendable {
    case frame(Frame)
    /// The payload is being discarded as it arrives; the connection answers
    /// RESOURCE_EXHAUSTED on that stream and carries on, as Go ttrpc does.
    case oversized(FrameHeader, limit: Int)
}

/// Splits a byte stream into ttrpc frames.
///
/// Called on the channel's event loop only. The length is checked against
/// `WireLimits.maxFrameBytes` from the header alone, before any payload is
/// held: a peer announcing 4 GiB costs nothing but the time to discard it
/// (and the idle timeout bounds that).
public struct FrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = InboundFrame

    private let limits: WireLimits
    /// Payload bytes of an oversized frame still to skip.
    private var discarding: UInt64 = 0

    public init(limits: WireLimits) {
        self.limits = limits
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if let frame = try decodeOne(&buffer) {
            context.fireChannelRead(Self.wrapInboundOut(frame))
            return .continue
        }
        return .needMoreData
    }

    /// The same step without a channel, for tests and the client.
    public mutating func decodeOne(_ buffer: inout ByteBuffer) throws -> InboundFrame? {
        if discarding > 0 {
            let skip = Int(min(UInt64(buffer.readableBytes), discarding))
            buffer.moveReaderIndex(forwardBy: skip)
            discarding -= UInt64(skip)
            if discarding > 0 { return nil }
        }
        guard let header = buffer.peekFrameHeader() else { return nil }
        if Int(header.length) > limits.maxFrameBytes {
            buffer.moveReaderIndex(forwardBy: FrameHeader.byteCount)
            discarding = UInt64(header.length)
            let skip = Int(min(UInt64(buffer.readableBytes), discarding))
            buffer.moveReaderIndex(forwardBy: skip)
            discarding -= UInt64(skip)
            return .oversized(header, limit: limits.maxFrameBytes)
        }
        guard buffer.readableBytes >= FrameHeader.byteCount + Int(header.length) else { return nil }
        buffer.moveReaderIndex(forwardBy: FrameHeader.byteCount)
        let payload = buffer.readSlice(length: Int(header.length))!
        return .frame(Frame(streamID: header.streamID, type: header.type, flags: header.flags, payload: payload))
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext,
        buffer: inout ByteBuffer,
        seenEOF: Bool
    ) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 {
            let buffered = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: buffered)
            throw WireError.truncatedFrame(bufferedBytes: buffered)
        }
        return .needMoreData
    }
}

extension ByteBuffer {
    /// The header at the reader index, if all 10 bytes are there; consumes nothing.
    public func peekFrameHeader() -> FrameHeader? {
        guard readableBytes >= FrameHeader.byteCount,
            let length = getInteger(at: readerIndex, endianness: .big, as: UInt32.self),
            let streamID = getInteger(at: readerIndex + 4, endianness: .big, as: UInt32.self),
            let type = getInteger(at: readerIndex + 8, as: UInt8.self),
            let flags = getInteger(at: readerIndex + 9, as: UInt8.self)
        else { return nil }
        return FrameHeader(
            length: length,
            streamID: streamID,
            type: FrameType(rawValue: type),
            flags: FrameFlags(rawValue: flags)
        )
    }

    /// Writes a header.
    public mutating func writeFrameHeader(_ header: FrameHeader) {
        writeInteger(header.length, endianness: .big)
        writeInteger(header.streamID, endianness: .big)
        writeInteger(header.type.rawValue)
        writeInteger(header.flags.rawValue)
    }
}
