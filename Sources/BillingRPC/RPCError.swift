public import BillingMessages

/// The one error a call ends with: a status code and a message for people.
/// Handlers throw it (or a domain error the server maps to it in one place);
/// clients receive it. The message never carries secrets or bound values.
public struct RPCError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: StatusCode
    public var message: String

    public init(_ code: StatusCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    /// The ttrpc envelope's status.
    public var status: BillingV1.Status {
        var status = BillingV1.Status()
        status.code = code.rawValue
        status.message = message
        return status
    }

    public init(status: BillingV1.Status) {
        self.init(StatusCode(rawValue: status.code), status.message)
    }
}
