internal import COpenSSL
internal import COpenSSLShims

/// An OpenSSL `SSL_CTX` built from a `TLSConfiguration`: certificates loaded
/// and checked once, then shared by every connection.
///
/// Sendable: OpenSSL allows one `SSL_CTX` to be used from many threads once
/// it is configured, and nothing here changes it after `init`.
public final class TLSContext: @unchecked Sendable {
    let context: OpaquePointer
    public let configuration: TLSConfiguration

    /// - Throws: `TLSError.file` for a certificate, key or CA that cannot be
    ///   loaded or does not match; `.openSSL` for anything else.
    public init(_ configuration: TLSConfiguration) throws(TLSError) {
        self.configuration = configuration
        let isServer = configuration.role == .server
        guard let context = SSL_CTX_new(isServer ? TLS_server_method() : TLS_client_method()) else {
            throw TLSError.failed("SSL_CTX_new")
        }
        self.context = context
        // Every stored property is set: if this throws, deinit frees the context.
        try configure(isServer: isServer)
    }

    deinit {
        SSL_CTX_free(context)
    }

    private func configure(isServer: Bool) throws(TLSError) {
        guard cbs_ssl_ctx_set_min_proto_version(context, Self.protocolVersion(configuration.minimumVersion)) == 1,
            cbs_ssl_ctx_set_max_proto_version(context, Self.protocolVersion(configuration.maximumVersion)) == 1
        else {
            throw TLSError.failed("setting protocol versions")
        }
        // No renegotiation (a DoS lever and a source of old bugs), no session
        // tickets (no resumption state to protect or rotate), no compression.
        cbs_ssl_ctx_set_options(
            context,
            cbs_op_no_renegotiation() | cbs_op_no_ticket() | cbs_op_no_compression() | cbs_op_cipher_server_preference()
        )
        _ = SSL_CTX_set_num_tickets(context, 0)
        guard SSL_CTX_set_cipher_list(context, configuration.cipherList) == 1 else {
            throw TLSError.failed("setting the cipher list")
        }
        guard SSL_CTX_use_certificate_chain_file(context, configuration.certificateChainPath) == 1 else {
            throw TLSError.file(path: configuration.certificateChainPath, reasons: TLSError.drainErrorQueue())
        }
        guard SSL_CTX_use_PrivateKey_file(context, configuration.privateKeyPath, SSL_FILETYPE_PEM) == 1 else {
            throw TLSError.file(path: configuration.privateKeyPath, reasons: TLSError.drainErrorQueue())
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            throw TLSError.file(
                path: configuration.privateKeyPath,
                reasons: ["the key does not match the certificate"] + TLSError.drainErrorQueue()
            )
        }
        guard SSL_CTX_load_verify_locations(context, configuration.trustRootsPath, nil) == 1 else {
            throw TLSError.file(path: configuration.trustRootsPath, reasons: TLSError.drainErrorQueue())
        }
        if isServer {
            // Mutual TLS: no certificate, no connection.
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
            if let names = SSL_load_client_CA_file(configuration.trustRootsPath) {
                SSL_CTX_set_client_CA_list(context, names)
            }
        } else {
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        }
        _ = TLSError.drainErrorQueue()
    }

    static func protocolVersion(_ version: TLSConfiguration.Version) -> Int32 {
        switch version {
        case .tls1_0: return cbs_tls1_version()
        case .tls1_1: return cbs_tls1_1_version()
        case .tls1_2: return cbs_tls1_2_version()
        case .tls1_3: return cbs_tls1_3_version()
        }
    }
}
