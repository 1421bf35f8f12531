internal import COpenSSL
internal import COpenSSLShims
internal import NIOCore

/// Who the peer is, from its verified certificate.
public struct TLSPeer: Sendable, Hashable {
    /// The subject's common name; empty if it has none.
    public var commonName: String
    /// URI subject alternative names, in certificate order.
    public var uris: [String]

    public init(commonName: String, uris: [String]) {
        self.commonName = commonName
        self.uris = uris
    }
}

/// One TLS session over two memory BIOs: bytes from the network are written
/// into `readBIO`, bytes for the network are read out of `writeBIO`.
///
/// Why memory BIOs rather than a socket BIO: the socket belongs to NIO, which
/// must stay the only thing doing I/O on it (non-blocking, on its event loop).
/// OpenSSL then only transforms bytes, and every byte it wants sent is
/// collected by `drainOutput` and written through the channel pipeline.
///
/// Not thread-safe: owned by one `OpenSSLHandler`, used on its event loop.
final class TLSConnection {
    private let ssl: OpaquePointer
    private let readBIO: OpaquePointer
    private let writeBIO: OpaquePointer
    private let isClient: Bool

    init(context: TLSContext) throws(TLSError) {
        guard let ssl = SSL_new(context.context) else { throw TLSError.failed("SSL_new") }
        guard let readBIO = BIO_new(BIO_s_mem()), let writeBIO = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TLSError.failed("BIO_new")
        }
        // SSL takes ownership of both BIOs; SSL_free releases them.
        SSL_set_bio(ssl, readBIO, writeBIO)
        self.ssl = ssl
        self.readBIO = readBIO
        self.writeBIO = writeBIO
        if case .client(let serverName) = context.configuration.role {
            isClient = true
            SSL_set_connect_state(ssl)
            try Self.expectServerName(ssl, serverName)
        } else {
            isClient = false
            SSL_set_accept_state(ssl)
        }
    }

    deinit {
        SSL_free(ssl)
    }

    /// Host names are checked against DNS SANs and sent as SNI; IP literals
    /// against IP SANs (OpenSSL checks those separately).
    private static func expectServerName(_ ssl: OpaquePointer, _ name: String) throws(TLSError) {
        let isIP =
            name.allSatisfy { $0.isHexDigit || $0 == "." || $0 == ":" } && (name.contains(".") || name.contains(":"))
        if isIP {
            guard X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1 else {
                throw TLSError.failed("setting the expected IP")
            }
        } else {
            guard SSL_set1_host(ssl, name) == 1, cbs_ssl_set_tlsext_host_name(ssl, name) == 1 else {
                throw TLSError.failed("setting the expected host name")
            }
        }
    }

    enum Progress {
        case complete
        case inProgress
        case failed(TLSError)
    }

    func handshake() -> Progress {
        let result = SSL_do_handshake(ssl)
        if result == 1 { return .complete }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .inProgress
        default:
            return .failed(handshakeError())
        }
    }

    private func handshakeError() -> TLSError {
        let reasons = TLSError.drainErrorQueue()
        let verify = SSL_get_verify_result(ssl)
        if isClient && verify != X509_V_OK {
            return .verificationFailed(String(cString: X509_verify_cert_error_string(verify)))
        }
        return .openSSL(operation: "handshake", reasons: reasons)
    }

    /// Hands bytes from the network to OpenSSL; consumes all of `buffer`.
    func receive(_ buffer: inout ByteBuffer) {
        while buffer.readableBytes > 0 {
            let written = buffer.withUnsafeReadableBytes { bytes in
                BIO_write(readBIO, bytes.baseAddress, Int32(clamping: bytes.count))
            }
            // A memory BIO only refuses on allocation failure.
            precondition(written > 0, "memory BIO refused \(buffer.readableBytes) bytes")
            buffer.moveReaderIndex(forwardBy: Int(written))
        }
    }

    /// Everything OpenSSL wants sent, or nil.
    func drainOutput(allocator: ByteBufferAllocator) -> ByteBuffer? {
        let pending = BIO_ctrl_pending(writeBIO)
        guard pending > 0 else { return nil }
        var buffer = allocator.buffer(capacity: Int(pending))
        while BIO_ctrl_pending(writeBIO) > 0 {
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Int(BIO_ctrl_pending(writeBIO))) { bytes in
                let read = BIO_read(writeBIO, bytes.baseAddress, Int32(clamping: bytes.count))
                return max(Int(read), 0)
            }
        }
        return buffer
    }

    enum ReadResult {
        /// Some plaintext was appended; call again.
        case data
        /// Nothing more until more bytes arrive.
        case wantMore
        /// The peer sent close_notify.
        case closed
        case failed(TLSError)
    }

    /// Decrypts into `buffer`.
    func read(into buffer: inout ByteBuffer) -> ReadResult {
        var read = 0
        var result: Int32 = 0
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 16_384) { bytes in
            result = SSL_read_ex(ssl, bytes.baseAddress, bytes.count, &read)
            return result == 1 ? read : 0
        }
        if result == 1 { return .data }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .wantMore
        case SSL_ERROR_ZERO_RETURN:
            return .closed
        default:
            return .failed(.openSSL(operation: "read", reasons: TLSError.drainErrorQueue()))
        }
    }

    /// Encrypts all of `buffer` (a memory BIO never pushes back).
    func write(_ buffer: ByteBuffer) throws(TLSError) {
        var remaining = buffer
        while remaining.readableBytes > 0 {
            var written = 0
            let result = remaining.withUnsafeReadableBytes { bytes in
                SSL_write_ex(ssl, bytes.baseAddress, bytes.count, &written)
            }
            guard result == 1 else { throw TLSError.failed("write") }
            remaining.moveReaderIndex(forwardBy: written)
        }
    }

    /// Queues close_notify.
    func shutdown() {
        _ = SSL_shutdown(ssl)
        _ = TLSError.drainErrorQueue()
    }

    /// The verified peer, after the handshake.
    func peer() -> TLSPeer? {
        guard let certificate = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(certificate) }
        let names = CertificateNames.read(certificate)
        return TLSPeer(commonName: names.commonName, uris: names.uris)
    }

    var negotiatedVersion: String {
        String(cString: SSL_get_version(ssl))
    }
}
