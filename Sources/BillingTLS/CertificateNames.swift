internal import COpenSSL
internal import COpenSSLShims

/// The names a certificate carries: the subject's common name and its URI
/// subject alternative names, each read as the exact bytes the certificate
/// holds (by length, not up to a NUL), so what the role is decided from is
/// what the CA signed. The handshake's peer and `CertificateFile` both read
/// them here.
enum CertificateNames {
    /// Names longer than this are cut: no name billingd reads comes near it,
    /// and a certificate is bounded by the handshake's limits anyway.
    static let maxNameBytes = 4096

    static func read(_ certificate: OpaquePointer) -> (commonName: String, uris: [String]) {
        let commonName = bytes { cbs_x509_common_name(certificate, $0, $1) }
        let count = Int(cbs_x509_san_uri_count(certificate))
        let uris = (0..<count).map { index in
            var buffer = [UInt8](repeating: 0, count: maxNameBytes)
            let length = Int(cbs_x509_san_uri(certificate, Int32(index), &buffer, Int32(buffer.count)))
            return String(decoding: buffer.prefix(max(0, min(length, buffer.count))), as: UTF8.self)
        }
        return (commonName.map { String(decoding: $0, as: UTF8.self) } ?? "", uris)
    }

    /// A NUL-terminated string a shim wrote, cut at the length it reported.
    private static func bytes(_ fill: (UnsafeMutablePointer<CChar>, Int32) -> Int32) -> [UInt8]? {
        var buffer = [CChar](repeating: 0, count: maxNameBytes)
        let length = Int(fill(&buffer, Int32(buffer.count)))
        guard length >= 0 else { return nil }
        return buffer.prefix(min(length, buffer.count - 1)).map { UInt8(bitPattern: $0) }
    }
}
