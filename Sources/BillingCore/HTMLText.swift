/// Text for an HTML page (the sandbox's, billing-panel's): every `&`, `<`,
/// `>`, `"` and `'` becomes an entity, in text and in quoted attributes alike.
///
/// Per Unicode scalar, not per `Character`: a `"` followed by a combining
/// mark (U+0338) or a joiner (U+200D) is one grapheme that is not equal to
/// `"`, yet the browser still reads the quote and closes the attribute.
public enum HTMLText {
    public static func escape(_ text: some StringProtocol) -> String {
        var escaped = ""
        escaped.unicodeScalars.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }
}
