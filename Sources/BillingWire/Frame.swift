public import NIOCore

/// The ttrpc message types (containerd/ttrpc PROTOCOL.md). Unknown values are
/// kept: a peer may send types from a later version.
public struct FrameType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Opens a stream; the payload is a `billing.v1.Request`.
    public static let request = FrameType(rawValue: 0x01)
    /// Ends a stream; the payload is a `billing.v1.Response`.
    public static let response = FrameType(rawValue: 0x02)
    /// Stream data; the payload is one message of the method's type.
    public static let data = FrameType(rawValue: 0x03)

    public var description: String {
        switch self {
        case .request: return "Request"
        case .response: return "Response"
        case .data: return "Data"
        default: return "type 0x" + String(rawValue, radix: 16)
        }
    }
}

/// Flags; their meaning depends on the frame type.
public struct FrameFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Request and Data: the sender sends no more data on this stream.
    public static let remoteClosed = FrameFlags(rawValue: 0x01)
    /// Request: the sender will send more data (client streaming).
    public static let remoteOpen = FrameFlags(rawValue: 0x02)
    /// Data: this frame carries no message (Go ttrpc ends a server stream with
    /// Data[remoteClosed|noData]).
    public static let noData = FrameFlags(rawValue: 0x02)
}

/// The 10-byte frame header: length (4, big-endian), stream id (4,
/// big-endian), type (1), flags (1).
public struct FrameHeader: Hashable, Sendable {
    public static let byteCount = 10

    /// Bytes of payload after the header.
    public var length: UInt32
    /// Odd for client-initiated streams; the only kind ttrpc 1.2 has.
    public var streamID: UInt32
    public var type: FrameType
    public var flags: FrameFlags

    public init(length: UInt32, streamID: UInt32, type: FrameType, flags: FrameFlags) {
        self.length = length
        self.streamID = streamID
        self.type = type
        self.flags = flags
    }
}

/// One frame with its payload. The payload buffer is owned by the frame.
public struct Frame: Hashable, Sendable {
    public var streamID: UInt32
    public var type: FrameType
    public var flags: FrameFlags
    public var payload: ByteBuffer

    public init(streamID: UInt32, type: FrameType, flags: FrameFlags = [], payload: ByteBuffer) {
        self.streamID = streamID
        self.type = type
        self.flags = flags
        self.payload = payload
    }

    public var header: FrameHeader {
        FrameHeader(
            length: UInt32(truncatingIfNeeded: payload.readableBytes),
            streamID: streamID,
            type: type,
            flags: flags
        )
    }
}
