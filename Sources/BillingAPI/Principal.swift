public import BillingRPC

/// Who a caller is and what it may do, read from its verified certificate.
///
/// The role comes from the one URI subject alternative name of the form
/// `billing://ROLE/NAME`:
/// - `billing://internal/<service>`: an internal service, any account;
/// - `billing://account/<account id>`: a client scoped to that one account;
/// - `billing://operator/<person>`: an operator (invoices, support).
/// NAME is 1 to 64 of `A-Z a-z 0-9 _ . -` (the rule for ids).
///
/// The rule is exact, and anything unclear grants nothing: a certificate
/// with any URI holding a control, format or non-ASCII character, with more
/// than one `billing:` URI (whatever their roles, "first wins" would let the
/// order decide), or whose `billing:` URI is not exactly of that form, has
/// no principal. The subject CN is for logs only and grants nothing. billingd
/// and `billing doctor` both decide with this initializer.
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

    /// nil when the certificate names no role by the rule above; `refusal`
    /// says why.
    public init?(peer: PeerIdentity) {
        guard case .success(let principal) = Self.decide(peer) else { return nil }
        self = principal
    }

    /// Why a peer has no principal, for people (`billing doctor`, logs).
    public static func refusal(_ peer: PeerIdentity) -> String? {
        guard case .failure(let why) = decide(peer) else { return nil }
        return why.reason
    }

    private struct Refusal: Error {
        let reason: String
    }

    private static func decide(_ peer: PeerIdentity) -> Result<Principal, Refusal> {
        for uri in peer.uris where !uri.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) {
            return .failure(
                Refusal(
                    reason:
                        "a URI holds a space, control, format or non-ASCII character: \(uri.debugDescription.prefix(200))"
                )
            )
        }
        let billing = peer.uris.filter { $0.lowercased().hasPrefix("billing:") }
        guard let uri = billing.first else { return .failure(Refusal(reason: "no billing://ROLE/NAME URI")) }
        guard billing.count == 1 else {
            return .failure(
                Refusal(
                    reason:
                        "\(billing.count) billing URIs (\(billing.joined(separator: ", ").prefix(300))); a certificate names one role"
                )
            )
        }
        let malformed = Refusal(
            reason:
                "\(uri.prefix(200)) is not billing://internal|account|operator/NAME with NAME of 1 to 64 of A-Z a-z 0-9 _ . -"
        )
        guard uri.hasPrefix("billing://") else { return .failure(malformed) }
        let parts = uri.dropFirst("billing://".count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, isName(parts[1]) else { return .failure(malformed) }
        let name = String(parts[1])
        switch parts[0] {
        case "internal": return .success(Principal(role: .internalService, name: name))
        case "account": return .success(Principal(role: .account(name), name: name))
        case "operator": return .success(Principal(role: .operator, name: name))
        default: return .failure(malformed)
        }
    }

    private static func isName(_ name: Substring) -> Bool {
        (1...64).contains(name.utf8.count)
            && name.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == 0x5F || byte == 0x2E || byte == 0x2D
            }
    }

    public var description: String {
        switch role {
        case .internalService: return "internal/\(name)"
        case .account: return "account/\(name)"
        case .operator: return "operator/\(name)"
        }
    }
}
