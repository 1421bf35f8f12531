import BillingCore
import Testing

/// The rules for what comes from outside: URLs, page tokens, instants.
@Suite struct InputRulesTests {
    @Test func returnURLsThatCouldBreakAHeaderOrAPageAreRefused() {
        let refused = [
            "https://panel.example/\r\nSet-Cookie: x=1", "https://panel.example/a\nb", "https://panel.example/a b",
            "https://panel.example/\u{202E}gpj.exe", "https://pänel.example/", "https://panel.example@evil.example/",
            "ftp://panel.example/", "https:/panel.example", "https://", "https://:443/", "//panel.example/",
            "javascript:alert(1)", "https://panel.example/%zz", "https://panel.example/%4", "https://panel.example:0/",
            "https://panel.example:65536/", "https://-panel.example/", "https://panel..example/",
            "https://panel.example/<script>",
            "https://panel.example/\"", "https://panel.example/a\\b", "https://[::1/", "https://panel.example/\t",
            "https://panel.example/" + String(repeating: "a", count: 2048), "HTTPS://panel.example/",
        ]
        for url in refused {
            #expect(throws: BillingError.self, "\(url.debugDescription)") { try WebURL.check(url, "return URL") }
        }
        let accepted = [
            "https://panel.example/payments", "http://127.0.0.1:8080/back?x=1&y=%20#top", "https://[::1]:8443/p",
            "https://xn--pnel-moa.example/a/b;c=d?e=f+g", "https://panel.example",
            "https://a.b.c.example:443/~user/(x)",
        ]
        for url in accepted {
            #expect(throws: Never.self, "\(url)") { try WebURL.check(url, "return URL") }
        }
    }

    @Test func textFromOutsideIsOneLineThatReadsAsItDisplays() {
        for bad in ["a\u{0}", "a\nb", "a\u{2028}b", "a\u{2029}b", "evil\u{202E}gpj.exe", "x\u{2066}y", "\u{85}"] {
            #expect(throws: BillingError.self, "\(bad.debugDescription)") { try Text.check(bad, "name", max: 100) }
        }
        for blank in ["   ", "\u{3000}", "\u{200B}", "\u{061C}", " \u{FEFF} "] {
            #expect(throws: BillingError.self, "\(blank.debugDescription)") {
                try Text.check(blank, "name", max: 100, required: true)
            }
        }
        // What scripts need stays: joiners, marks, right-to-left text itself.
        for good in ["Jürgen", "क्‍ष", "\u{200F}محمد", "a\u{200D}b", "山田太郎", "Ελένη 😀"] {
            #expect(throws: Never.self, "\(good.debugDescription)") { try Text.check(good, "name", max: 100) }
        }
    }

    @Test func htmlEscapingWorksPerScalarSoNoCombiningMarkHidesAQuote() {
        #expect(HTMLText.escape("<a href=\"x\">'&'</a>") == "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
        // A quote, a less-than and an apostrophe each followed by a combining
        // mark or a joiner are single Characters, yet the browser reads the
        // quote: they are escaped all the same.
        for mark in ["\u{0338}", "\u{200D}", "\u{0301}"] {
            for character in ["\"", "<", "'", ">", "&"] {
                let escaped = HTMLText.escape(character + mark + " onfocus=x")
                #expect(
                    !escaped.unicodeScalars.contains { "<>\"'".unicodeScalars.contains($0) },
                    "\(escaped.debugDescription)"
                )
                #expect(escaped.hasPrefix("&"), "\(escaped.debugDescription)")
            }
        }
        #expect(HTMLText.escape("Zoë 🇺🇦 plain") == "Zoë 🇺🇦 plain")
    }

    @Test func pageTokensAreBoundedAndChecked() throws {
        let token = PageToken(sortKey: 1_800_000_000_000, id: "pay_0123456789abcdef0123456789abcdef")
        #expect(try PageToken(token.encoded) == token)
        for bad in [
            String(repeating: "9", count: 10_000), "1~" + String(repeating: "a", count: 99), "x~pay", "1", "1~a b", "",
            "1~",
        ] {
            #expect(throws: BillingError.self, "\(bad.prefix(20))") { try PageToken(bad) }
        }
    }

    @Test func instantsFromOutsideStayWithinTheYears2000To9999() throws {
        try Timestamps.check(Timestamps.earliestMs, "t")
        try Timestamps.check(Timestamps.latestMs, "t")
        for bad in [Int64.min, -1, 0, Timestamps.earliestMs - 1, Timestamps.latestMs + 1, Int64.max] {
            #expect(throws: BillingError.self) { try Timestamps.check(bad, "t") }
        }
        #expect(throws: BillingError.self) { try Timestamps.adding(days: 1, to: Timestamps.latestMs, "t") }
        #expect(throws: BillingError.self) { try Timestamps.adding(days: Int64.max, to: Timestamps.earliestMs, "t") }
        #expect(
            try Timestamps.adding(days: 1, to: Timestamps.earliestMs, "t") == Timestamps.earliestMs + Timestamps.dayMs
        )
    }
}
