/// What can be wrong with frames on the wire.
public enum WireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A header announced more payload than allowed.
    case frameTooLarge(length: UInt32, limit: Int, streamID: UInt32)
    /// The connection closed in the middle of a frame.
    case truncatedFrame(bufferedBytes: Int)

    public var description: String {
        switch self {
        case .frameTooLarge(let length, let limit, let streamID):
            return "frame of \(length) bytes on stream \(streamID) is over the limit of \(limit)"
        case .truncatedFrame(let buffered):
            return "connection closed inside a frame (\(buffered) bytes buffered)"
        }
    }
}
