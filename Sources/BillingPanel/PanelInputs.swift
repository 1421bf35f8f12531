internal import Hummingbird

/// For billing-fuzz (`panel` target): every parser a browser's request
/// reaches before billingd does, on arbitrary bytes, with the properties the
/// pages rely on. Traps on a violation; returns otherwise.
public enum PanelInputs {
    public static func check(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let decoder = URLEncodedFormDecoder()
        _ = try? decoder.decode(Panel.SignInForm.self, from: text)
        _ = try? decoder.decode(Panel.TopUpForm.self, from: text)
        _ = try? decoder.decode(Panel.TopUpQuery.self, from: text)
        _ = try? decoder.decode(Panel.HistoryQuery.self, from: text)
        _ = try? decoder.decode(Panel.MigrationForm.self, from: text)
        if let form = try? decoder.decode(Panel.RenewForm.self, from: text),
            let items = try? Panel.items(form.periods)
        {
            precondition(items.count <= 100, "more than 100 renewal items")
            precondition(items.allSatisfy { (1...120).contains($0.periods) && Panel.isID($0.serviceId) })
        }
        if let day = Panel.dayStart(text) {
            // 1970-01-01 to 9999-12-31.
            precondition(day >= 0 && day <= 253_402_214_400_000, "a day out of range: \(day)")
        }
        if Panel.isID(text) { precondition(text.utf8.count <= 64) }
        let escaped = HTML.escape(text)
        // By scalar, as the browser reads it: a quote with a combining mark
        // is one Character that is not a quote, yet it still ends an attribute.
        precondition(
            !escaped.unicodeScalars.contains { "<>\"'".unicodeScalars.contains($0) },
            "markup left after escaping"
        )
        for character in text.urlQueryEscaped {
            precondition(
                character.isASCII && (character.isLetter || character.isNumber || "-._~%".contains(character)),
                "\(character) left in a query value"
            )
        }
    }
}
