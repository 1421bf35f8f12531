internal import COpenSSL
internal import COpenSSLShims

#if canImport(Glibc)
internal import Glibc
#endif

/// What a PEM certificate file says about itself, for diagnostics
/// (`billing doctor`): names and validity, never key material.
public struct CertificateFile: Sendable, Hashable {
    public var commonName: String
    public var uris: [String]
    /// Seconds since the epoch.
    public var notBefore: Int64
    public var notAfter: Int64

    /// - Throws: `TLSError.file` when the file is not a readable PEM certificate.
    public static func read(_ path: String) throws(TLSError) -> CertificateFile {
        guard let bio = BIO_new_file(path, "r") else {
            throw TLSError.file(path: path, reasons: TLSError.drainErrorQueue())
        }
        defer { BIO_free(bio) }
        guard let x509 = PEM_read_bio_X509(bio, nil, nil, nil) else {
            throw TLSError.file(path: path, reasons: TLSError.drainErrorQueue())
        }
        defer { X509_free(x509) }
        let names = CertificateNames.read(x509)
        return CertificateFile(
            commonName: names.commonName,
            uris: names.uris,
            notBefore: seconds(X509_get0_notBefore(x509)),
            notAfter: seconds(X509_get0_notAfter(x509))
        )
    }

    private static func seconds(_ time: UnsafePointer<ASN1_TIME>?) -> Int64 {
        var parts = tm()
        guard let time, ASN1_TIME_to_tm(time, &parts) == 1 else { return 0 }
        return Int64(timegm(&parts))
    }
}
