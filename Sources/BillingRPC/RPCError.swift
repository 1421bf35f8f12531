/// The one error a call ends with: a status code and a message for people.
/// Handlers throw it (or a domain error the server maps to it in one place);
/// clients receive it. The message never carries secrets or bound values.
///
/// `cause` is the error behind it, for logs on this side only: it never
/// crosses the wire, and two errors are equal by code and message alone.
public struct RPCError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: StatusCode
    public var message: String
    public var cause: (any Error)?

    public init(_ code: StatusCode, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { "\(code): \(message)" }

    public static func == (lhs: RPCError, rhs: RPCError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(message)
    }
}
