#if canImport(Glibc)
internal import Glibc
#endif

/// The certificate set of the embedded default, written as PEM files into one
/// directory on first start and reused after:
///
/// | file | what |
/// | --- | --- |
/// | `ca.pem`, `ca-key.pem` | the development CA (trust root of both sides) |
/// | `server.pem`, `server-key.pem` | billingd: DNS localhost, IP 127.0.0.1 and ::1 |
/// | `internal.pem`, `internal-key.pem` | a client with role internal (`billing://internal/dev`) |
/// | `operator.pem`, `operator-key.pem` | a client with role operator (`billing://operator/dev`) |
///
/// Keys are written with mode 0600.
public enum DevelopmentCertificates {
    public static let files = ["ca", "server", "internal", "operator"]

    /// Creates the set unless `ca.pem` exists; returns whether it created it.
    @discardableResult
    public static func ensure(in directory: String) throws(TLSError) -> Bool {
        if access(directory + "/ca.pem", F_OK) == 0 { return false }
        let authority = try CertificateAuthority(commonName: "billingd development CA")
        try write(authority.credential, name: "ca", in: directory)
        try write(
            try authority.issue(
                commonName: "billingd",
                usage: .server,
                dnsNames: ["localhost"],
                ipAddresses: ["127.0.0.1", "::1"]
            ),
            name: "server",
            in: directory
        )
        try write(
            try authority.issue(commonName: "dev-internal", usage: .client, uris: ["billing://internal/dev"]),
            name: "internal",
            in: directory
        )
        try write(
            try authority.issue(commonName: "dev-operator", usage: .client, uris: ["billing://operator/dev"]),
            name: "operator",
            in: directory
        )
        return true
    }

    /// Writes `name.pem` (0644) and `name-key.pem` (0600).
    public static func write(_ credential: PEMCredential, name: String, in directory: String) throws(TLSError) {
        try writeFile(directory + "/\(name).pem", credential.certificatePEM, mode: 0o644)
        try writeFile(directory + "/\(name)-key.pem", credential.privateKeyPEM, mode: 0o600)
    }

    private static func writeFile(_ path: String, _ text: String, mode: mode_t) throws(TLSError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
        guard fd >= 0 else { throw TLSError.file(path: path, reasons: [String(cString: strerror(errno))]) }
        defer { close(fd) }
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            guard written > 0 else { throw TLSError.file(path: path, reasons: [String(cString: strerror(errno))]) }
            offset += written
        }
        guard fchmod(fd, mode) == 0 else {
            throw TLSError.file(path: path, reasons: [String(cString: strerror(errno))])
        }
    }
}
