/// Who is calling, as the transport established it (from the verified client
/// certificate). The RPC core only carries it; the server decides what it may do.
public struct PeerIdentity: Sendable, Hashable {
    /// The certificate's subject common name.
    public var commonName: String
    /// The certificate's URI subject alternative names, e.g. "billing://operator/alice".
    public var uris: [String]

    public init(commonName: String, uris: [String]) {
        self.commonName = commonName
        self.uris = uris
    }

    /// A peer with no certificate: in-process calls and tests.
    public static let anonymous = PeerIdentity(commonName: "", uris: [])
}
