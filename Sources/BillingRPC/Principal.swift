/// Who a caller is and what it may do, read from its verified certificate.
///
/// The role is the first URI subject alternative name of the form
/// `billing://ROLE/NAME`:
/// - `billing://internal/<service>`: an internal service, any account;
/// - `billing://account/<account id>`: a client scoped to that one account;
/// - `billing://operator/<person>`: an operator (invoices, support).
/// The subject CN is for logs only and grants nothing: URIs cannot be
/// confused with host names, and a CA issues them deliberately.
public struct Principal: Sendable, Hashable, CustomStringConvertible {
    public enum Role: Sendable, Hashable {
        case internalService
        case account(String)
        case `operator`
    }

    public let role: Role
    /// The NAME part: service name, account id or operator.
    public let name: String

    public init(role: Role, name: String) {
        self.role = role
        self.name = name
    }

    /// nil when no URI names a known role: such a caller may do nothing.
    public init?(peer: PeerIdentity) {
        for uri in peer.uris {
            guard uri.hasPrefix("billing://") else { continue }
            let parts = uri.dropFirst("billing://".count).split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[1].isEmpty, !parts[1].contains("/") else { continue }
            let name = String(parts[1])
            switch parts[0] {
            case "internal": self.init(role: .internalService, name: name)
            case "account": self.init(role: .account(name), name: name)
            case "operator": self.init(role: .operator, name: name)
            default: continue
            }
            return
        }
        return nil
    }

    public var description: String {
        switch role {
        case .internalService: return "internal/\(name)"
        case .account: return "account/\(name)"
        case .operator: return "operator/\(name)"
        }
    }
}
