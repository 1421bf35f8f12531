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
    public static func check(_ text: String, _ what: String, max: Int, required: Bool = false) throws(BillingError) {
        if required && text.isEmpty { throw .invalidArgument("\(what) is required") }
        guard text.utf8.count <= max else { throw .invalidArgument("\(what) is longer than \(max) bytes") }
        guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw .invalidArgument("\(what) contains control characters")
        }
    }
}
