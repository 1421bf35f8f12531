internal import COpenSSL

/// HMAC-SHA256 from the system OpenSSL (libcrypto), for webhook signatures.
/// Here because this module is the one home of OpenSSL in the package.
public enum MessageAuthentication {
    /// HMAC-SHA256 of `message` under `key`: 32 bytes.
    public static func sha256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let done = key.withUnsafeBufferPointer { key in
            message.withUnsafeBufferPointer { message in
                digest.withUnsafeMutableBufferPointer { digest in
                    HMAC(
                        EVP_sha256(),
                        key.baseAddress,
                        Int32(key.count),
                        message.baseAddress,
                        message.count,
                        digest.baseAddress,
                        &length
                    )
                }
            }
        }
        // Only an allocation failure inside libcrypto makes HMAC fail.
        precondition(done != nil && length == 32, "HMAC-SHA256 failed")
        return Array(digest.prefix(Int(length)))
    }

    /// Equal bytes, in time that does not depend on where they differ.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { a in
            b.withUnsafeBytes { b in CRYPTO_memcmp(a.baseAddress, b.baseAddress, a.count) == 0 }
        }
    }
}
