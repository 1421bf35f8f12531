/// Why a message could not be encoded or decoded. The text names fields and
/// limits, never field values: these errors reach logs and RPC statuses.
public enum MessageError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The input is longer than the configured maximum; nothing was parsed.
    case tooLarge(bytes: Int, limit: Int)
    /// Not valid protobuf for this message type.
    case malformed(String)
    /// Nested messages deeper than `DecodeLimits.maxDepth`.
    case tooDeep(limit: Int)
    /// A string field that is not UTF-8, or holds U+0000.
    case invalidString(field: String)

    public var description: String {
        switch self {
        case .tooLarge(let bytes, let limit):
            return "message of \(bytes) bytes is over the limit of \(limit)"
        case .malformed(let why):
            return "malformed message: \(why)"
        case .tooDeep(let limit):
            return "message nested deeper than \(limit) levels"
        case .invalidString(let field):
            return "field \(field) is not valid UTF-8 without NUL"
        }
    }
}
