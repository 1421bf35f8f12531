internal import COpenSSL

/// The TLS module's one error type. Reasons come from OpenSSL's error queue,
/// which is drained after every failing call so one failure never leaks into
/// the next. No key material or certificate content is ever included.
public enum TLSError: Error, Hashable, Sendable, CustomStringConvertible {
    /// An OpenSSL call failed; `reasons` is the drained error queue, oldest first.
    case openSSL(operation: String, reasons: [String])
    /// The handshake did not finish within the configured time.
    case handshakeTimeout
    /// The peer closed the connection before the handshake finished.
    case closedDuringHandshake
    /// Writing or reading after the connection was closed.
    case closed
    /// A certificate or key file could not be used.
    case file(path: String, reasons: [String])
    /// The peer's certificate did not verify (client side: with the X.509 reason).
    case verificationFailed(String)

    public var description: String {
        switch self {
        case .openSSL(let operation, let reasons):
            return "TLS \(operation) failed" + (reasons.isEmpty ? "" : ": " + reasons.joined(separator: "; "))
        case .handshakeTimeout:
            return "TLS handshake timed out"
        case .closedDuringHandshake:
            return "connection closed during the TLS handshake"
        case .closed:
            return "TLS connection is closed"
        case .file(let path, let reasons):
            return "cannot use \(path)" + (reasons.isEmpty ? "" : ": " + reasons.joined(separator: "; "))
        case .verificationFailed(let reason):
            return "peer certificate rejected: \(reason)"
        }
    }

    /// Empties OpenSSL's per-thread error queue into readable reasons.
    static func drainErrorQueue() -> [String] {
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            // "error:0A000086:SSL routines::certificate verify failed" → keep the reason part.
            reasons.append(
                text.split(separator: ":", maxSplits: 4, omittingEmptySubsequences: false).last.map(String.init) ?? text
            )
        }
        return reasons
    }

    static func failed(_ operation: String) -> TLSError {
        .openSSL(operation: operation, reasons: drainErrorQueue())
    }
}
