/// How one side of a TLS connection is set up. Certificates and keys are PEM
/// files; paths, never contents, appear in errors.
public struct TLSConfiguration: Sendable, Hashable {
    public enum Role: Sendable, Hashable {
        /// Requires and verifies a client certificate from `trustRootsPath`.
        case server
        /// Verifies the server's certificate from `trustRootsPath` and its name.
        case client(serverName: String)
    }

    public enum Version: Sendable, Hashable, Comparable {
        case tls1_0, tls1_1, tls1_2, tls1_3
    }

    public var role: Role
    /// This side's certificate chain (leaf first).
    public var certificateChainPath: String
    public var privateKeyPath: String
    /// The CA certificates a peer's certificate must chain to.
    public var trustRootsPath: String
    /// 1.2: the oldest version without known practical attacks that every
    /// supported client speaks. Lower only in tests that prove refusal.
    public var minimumVersion: Version = .tls1_2
    public var maximumVersion: Version = .tls1_3
    /// TLS 1.2 suites: forward-secret AEAD only. TLS 1.3 suites are OpenSSL's
    /// defaults, all of which are AEAD.
    public var cipherList: String = "ECDHE+AESGCM:ECDHE+CHACHA20"
    /// How long a peer has to finish the handshake. 10 s covers a slow client
    /// on a loaded machine; beyond that a half-open handshake only holds a slot.
    public var handshakeTimeout: Duration = .seconds(10)

    public init(role: Role, certificateChainPath: String, privateKeyPath: String, trustRootsPath: String) {
        self.role = role
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
        self.trustRootsPath = trustRootsPath
    }
}
