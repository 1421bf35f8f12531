/// Web addresses that come from outside (where a payment system sends the
/// person back) and end up in HTTP headers, pages and other systems' forms.
///
/// The rule is strict so that nothing accepted can break later: an absolute
/// `http://` or `https://` URL of at most 2,048 bytes, of printable ASCII
/// only (no spaces, no control characters: a CR/LF would split the sandbox's
/// `Location` header; no bidi or other non-ASCII characters that display as
/// something else: IDNs go in as punycode, paths percent-encoded), a host of
/// letters, digits, dots and hyphens or an IP literal, an optional port, no
/// user information (`https://panel.example@evil.example/` reads as the
/// panel and goes to evil), and only RFC 3986 characters after the host.
public enum WebURL {
    public static let maxBytes = 2048

    public static func check(_ url: String, _ what: String) throws(BillingError) {
        let refusal = BillingError.invalidArgument(
            "\(what) must be an absolute http(s) URL of at most \(maxBytes) bytes, of printable ASCII without spaces or user information"
        )
        let bytes = Array(url.utf8)
        guard bytes.count <= maxBytes, bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw refusal }
        let rest: ArraySlice<UInt8>
        if url.hasPrefix("https://") {
            rest = bytes[8...]
        } else if url.hasPrefix("http://") {
            rest = bytes[7...]
        } else {
            throw refusal
        }
        let authorityEnd =
            rest.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }
            ?? rest.endIndex
        guard isAuthority(rest[rest.startIndex..<authorityEnd]) else { throw refusal }
        guard isPathQueryFragment(rest[authorityEnd...]) else { throw refusal }
    }

    /// host[:port], host a name or an IPv4 or bracketed IPv6 literal.
    private static func isAuthority(_ authority: ArraySlice<UInt8>) -> Bool {
        var host = authority
        if let colon = authority.lastIndex(of: UInt8(ascii: ":")),
            authority.first != UInt8(ascii: "[") || authority[colon - 1] == UInt8(ascii: "]")
        {
            let port = authority[(colon + 1)...]
            guard (1...5).contains(port.count), port.allSatisfy(isDigit),
                let number = Int(String(decoding: port, as: UTF8.self)),
                (1...65535).contains(number)
            else { return false }
            host = authority[authority.startIndex..<colon]
        }
        guard !host.isEmpty, host.count <= 253 else { return false }
        if host.first == UInt8(ascii: "[") {
            guard host.last == UInt8(ascii: "]"), host.count > 2 else { return false }
            return host.dropFirst().dropLast().allSatisfy {
                isHexDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".")
            }
        }
        let labels = host.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            (1...63).contains(label.count) && label.first != UInt8(ascii: "-") && label.last != UInt8(ascii: "-")
                && label.allSatisfy { isLetter($0) || isDigit($0) || $0 == UInt8(ascii: "-") }
        }
    }

    /// RFC 3986 path, query and fragment characters; "%" only as "%XX".
    private static func isPathQueryFragment(_ part: ArraySlice<UInt8>) -> Bool {
        var index = part.startIndex
        while index < part.endIndex {
            let byte = part[index]
            if byte == UInt8(ascii: "%") {
                guard part.endIndex - index >= 3, isHexDigit(part[index + 1]), isHexDigit(part[index + 2]) else {
                    return false
                }
                index += 3
                continue
            }
            guard isLetter(byte) || isDigit(byte) || "-._~!$&'()*+,;=:@/?#".utf8.contains(byte) else { return false }
            index += 1
        }
        return true
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
    private static func isLetter(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
    }
    private static func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66)
    }
}
