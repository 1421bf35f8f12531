internal import COpenSSL
internal import COpenSSLShims

#if canImport(Glibc)
internal import Glibc
#endif

/// A certificate and its private key, PEM-encoded.
public struct PEMCredential: Sendable, Hashable {
    public var certificatePEM: String
    public var privateKeyPEM: String

    public init(certificatePEM: String, privateKeyPEM: String) {
        self.certificatePEM = certificatePEM
        self.privateKeyPEM = privateKeyPEM
    }
}

/// Issues certificates: the development CA of the embedded default, and the
/// certificates tests need (another CA, expired ones, each role's client).
/// Keys are ECDSA P-256, signatures SHA-256.
///
/// Not for production PKI: it keeps its key in memory and in the PEM its
/// owner stores (readable by the owner only).
public final class CertificateAuthority: @unchecked Sendable {
    // Immutable after init; OpenSSL objects are only read when issuing.
    private let certificate: OpaquePointer
    private let key: OpaquePointer
    public let credential: PEMCredential

    /// A new self-signed CA.
    /// - Parameters: notBefore, notAfter: seconds since the epoch; default an
    ///   hour ago (clock skew) and ten years on.
    public init(commonName: String, notBefore: Int64? = nil, notAfter: Int64? = nil) throws(TLSError) {
        let now = Int64(time(nil))
        let notBefore = notBefore ?? now - 3600
        let notAfter = notAfter ?? now + 10 * 365 * 86_400
        guard let key = cbs_ec_p256_generate() else { throw TLSError.failed("generating a key") }
        guard let certificate = X509_new() else {
            EVP_PKEY_free(key)
            throw TLSError.failed("X509_new")
        }
        self.key = key
        self.certificate = certificate
        do throws(TLSError) {
            try Self.fill(
                certificate,
                subjectKey: key,
                commonName: commonName,
                notBefore: notBefore,
                notAfter: notAfter,
                issuer: nil
            )
            try Self.extend(
                certificate,
                issuer: certificate,
                [
                    (NID_basic_constraints, "critical,CA:TRUE,pathlen:0"),
                    (NID_key_usage, "critical,keyCertSign,cRLSign"),
                    (NID_subject_key_identifier, "hash"),
                ]
            )
            guard X509_sign(certificate, key, EVP_sha256()) > 0 else { throw TLSError.failed("signing the CA") }
            credential = PEMCredential(certificatePEM: try Self.pem(certificate), privateKeyPEM: try Self.pem(key: key))
        } catch {
            X509_free(certificate)
            EVP_PKEY_free(key)
            throw error
        }
    }

    /// A CA loaded from its PEM certificate and key (the embedded default
    /// reloads the one it made on first start).
    public init(loading credential: PEMCredential) throws(TLSError) {
        guard let certificate = Self.readCertificate(credential.certificatePEM) else {
            throw TLSError.openSSL(operation: "reading the CA certificate", reasons: TLSError.drainErrorQueue())
        }
        guard let key = Self.readKey(credential.privateKeyPEM) else {
            X509_free(certificate)
            throw TLSError.openSSL(operation: "reading the CA key", reasons: TLSError.drainErrorQueue())
        }
        guard X509_check_private_key(certificate, key) == 1 else {
            X509_free(certificate)
            EVP_PKEY_free(key)
            throw TLSError.openSSL(
                operation: "matching the CA key",
                reasons: ["the key does not match the certificate"] + TLSError.drainErrorQueue()
            )
        }
        self.certificate = certificate
        self.key = key
        self.credential = credential
    }

    deinit {
        X509_free(certificate)
        EVP_PKEY_free(key)
    }

    public enum Usage: Sendable {
        case server
        case client
    }

    /// Issues a leaf certificate.
    ///
    /// - Parameters:
    ///   - dnsNames, ipAddresses: the server's names (checked by clients).
    ///   - uris: URI SANs; billingd reads a caller's role from these.
    ///   - notBefore, notAfter: seconds since the epoch; default an hour ago
    ///     and 825 days on (the longest validity browsers ever accepted).
    public func issue(
        commonName: String,
        usage: Usage,
        dnsNames: [String] = [],
        ipAddresses: [String] = [],
        uris: [String] = [],
        notBefore: Int64? = nil,
        notAfter: Int64? = nil
    ) throws(TLSError) -> PEMCredential {
        let now = Int64(time(nil))
        let notBefore = notBefore ?? now - 3600
        let notAfter = notAfter ?? now + 825 * 86_400
        guard let leafKey = cbs_ec_p256_generate() else { throw TLSError.failed("generating a key") }
        defer { EVP_PKEY_free(leafKey) }
        guard let leaf = X509_new() else { throw TLSError.failed("X509_new") }
        defer { X509_free(leaf) }
        try Self.fill(
            leaf,
            subjectKey: leafKey,
            commonName: commonName,
            notBefore: notBefore,
            notAfter: notAfter,
            issuer: certificate
        )
        let names = dnsNames.map { "DNS:\($0)" } + ipAddresses.map { "IP:\($0)" } + uris.map { "URI:\($0)" }
        var extensions: [(Int32, String)] = [
            (NID_basic_constraints, "critical,CA:FALSE"),
            (NID_key_usage, "critical,digitalSignature"),
            (NID_ext_key_usage, usage == .server ? "serverAuth" : "clientAuth"),
            (NID_subject_key_identifier, "hash"),
            (NID_authority_key_identifier, "keyid:always"),
        ]
        if !names.isEmpty { extensions.append((NID_subject_alt_name, names.joined(separator: ","))) }
        try Self.extend(leaf, issuer: certificate, extensions)
        guard X509_sign(leaf, key, EVP_sha256()) > 0 else { throw TLSError.failed("signing a certificate") }
        return PEMCredential(certificatePEM: try Self.pem(leaf), privateKeyPEM: try Self.pem(key: leafKey))
    }

    // MARK: OpenSSL plumbing

    private static func fill(
        _ x509: OpaquePointer,
        subjectKey: OpaquePointer,
        commonName: String,
        notBefore: Int64,
        notAfter: Int64,
        issuer: OpaquePointer?
    ) throws(TLSError) {
        var serial: UInt64 = 0
        withUnsafeMutableBytes(of: &serial) { _ = RAND_bytes($0.baseAddress!.assumingMemoryBound(to: UInt8.self), 8) }
        serial &= 0x7FFF_FFFF_FFFF_FFFF  // positive, as RFC 5280 requires
        guard X509_set_version(x509, 2) == 1,
            ASN1_INTEGER_set_uint64(X509_get_serialNumber(x509), serial) == 1,
            ASN1_TIME_set(X509_getm_notBefore(x509), time_t(notBefore)) != nil,
            ASN1_TIME_set(X509_getm_notAfter(x509), time_t(notAfter)) != nil,
            X509_set_pubkey(x509, subjectKey) == 1
        else {
            throw TLSError.failed("filling a certificate")
        }
        let name = X509_get_subject_name(x509)
        // 0x1001 is MBSTRING_ASC, a macro Swift does not import.
        guard X509_NAME_add_entry_by_txt(name, "CN", 0x1001, commonName, -1, -1, 0) == 1 else {
            throw TLSError.failed("setting the common name")
        }
        guard X509_set_issuer_name(x509, issuer.map { X509_get_subject_name($0) } ?? name) == 1 else {
            throw TLSError.failed("setting the issuer")
        }
    }

    private static func extend(
        _ x509: OpaquePointer,
        issuer: OpaquePointer,
        _ extensions: [(Int32, String)]
    ) throws(TLSError) {
        for (nid, value) in extensions {
            guard cbs_x509_add_extension(x509, issuer, nid, value) == 1 else {
                throw TLSError.failed("adding extension \(nid)")
            }
        }
    }

    private static func pem(_ x509: OpaquePointer) throws(TLSError) -> String {
        try withMemoryBIO { bio in PEM_write_bio_X509(bio, x509) }
    }

    private static func pem(key: OpaquePointer) throws(TLSError) -> String {
        try withMemoryBIO { bio in PEM_write_bio_PrivateKey(bio, key, nil, nil, 0, nil, nil) }
    }

    private static func withMemoryBIO(_ write: (OpaquePointer) -> Int32) throws(TLSError) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { throw TLSError.failed("BIO_new") }
        defer { BIO_free(bio) }
        guard write(bio) == 1 else { throw TLSError.failed("writing PEM") }
        var bytes = [UInt8](repeating: 0, count: Int(BIO_ctrl_pending(bio)))
        let read = BIO_read(bio, &bytes, Int32(bytes.count))
        return String(decoding: bytes.prefix(max(Int(read), 0)), as: UTF8.self)
    }

    private static func readCertificate(_ pem: String) -> OpaquePointer? {
        withReadBIO(pem) { bio in PEM_read_bio_X509(bio, nil, nil, nil) }
    }

    private static func readKey(_ pem: String) -> OpaquePointer? {
        withReadBIO(pem) { bio in PEM_read_bio_PrivateKey(bio, nil, nil, nil) }
    }

    private static func withReadBIO(_ pem: String, _ read: (OpaquePointer) -> OpaquePointer?) -> OpaquePointer? {
        var bytes = Array(pem.utf8)
        return bytes.withUnsafeMutableBytes { buffer in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free(bio) }
            return read(bio)
        }
    }
}
