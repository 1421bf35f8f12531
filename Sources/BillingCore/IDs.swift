/// Makes ids: a type prefix and 16 random bytes in hex, e.g. "pay_3f…".
/// Random rather than sequential so ids leak nothing about volume and cannot
/// be guessed; authorization never relies on that, though.
public enum IDs {
    public static func make(_ prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        return prefix + "_" + hex(high) + hex(low)
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// Checks an id that came from outside: 1 to 64 bytes of [A-Za-z0-9_.-].
    /// Caller-chosen ids (accounts, services) follow the same rule.
    public static func check(_ id: String, _ what: String) throws(BillingError) {
        guard !id.isEmpty else { throw .invalidArgument("\(what) is required") }
        guard id.utf8.count <= 64,
            id.utf8.allSatisfy({ byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == 0x5F || byte == 0x2E || byte == 0x2D
            })
        else {
            throw .invalidArgument("\(what) must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-'")
        }
    }
}

/// Free text from outside (names, reasons, references): a byte limit, no
/// control characters. Storage and the server use this one rule.
public enum Text {
    /// What no text from outside may hold: control characters, line and
    /// paragraph separators (a name is one line), and the bidirectional
    /// embeddings, overrides and isolates that make text display in another
    /// order than it reads (U+202A–U+202E, U+2066–U+2069). Marks that scripts
    /// need (ZWJ, ZWNJ, LRM, RLM) are fine.
    /// Nothing a person would see: spaces and invisible characters only
    /// (zero-width spaces, marks that only steer direction).
    public static func isBlank(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { $0.properties.isWhitespace || $0.properties.isDefaultIgnorableCodePoint }
    }

    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .lineSeparator, .paragraphSeparator: return true
        default: return (0x202A...0x202E).contains(scalar.value) || (0x2066...0x2069).contains(scalar.value)
        }
    }

    public static func check(_ text: String, _ what: String, max: Int, required: Bool = false) throws(BillingError) {
        if required && text.isEmpty { throw .invalidArgument("\(what) is required") }
        if required && isBlank(text) { throw .invalidArgument("\(what) is blank") }
        guard text.utf8.count <= max else { throw .invalidArgument("\(what) is longer than \(max) bytes") }
        guard !text.unicodeScalars.contains(where: isControl) else {
            throw .invalidArgument("\(what) contains control characters")
        }
    }
}
