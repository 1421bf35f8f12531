public import BillingCore

/// An invoice as a printable page: one self-contained HTML document (its
/// style inline, no script, nothing fetched), A4 when printed.
public enum InvoiceHTML {
    public static func render(_ document: InvoiceDocument) -> String {
        let text = InvoiceText(document)
        func e(_ value: String) -> String { HTMLText.escape(value) }
        let issuer = text.issuerLines.map { "<div>\(e($0))</div>" }.joined()
        let facts = text.facts.map { "<tr><th scope=\"row\">\(e($0.0))</th><td>\(e($0.1))</td></tr>" }.joined()
        let billTo = text.billTo.map { "<div>\(e($0))</div>" }.joined()
        let bank = text.bankLines.map { "<div>\(e($0))</div>" }.joined()
        let legal = text.legalText.split(separator: "\n", omittingEmptySubsequences: false)
            .map { e(String($0)) }.joined(separator: "<br>")
        let stamp = text.stamp.isEmpty ? "" : "<div class=\"stamp\">\(e(text.stamp))</div>"
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(e(text.title))</title>
            <style>
            @page { size: A4; margin: 18mm; }
            body { font-family: "DejaVu Sans", Arial, sans-serif; color: #111; max-width: 180mm; margin: 2em auto; font-size: 11pt; position: relative; }
            header { display: flex; justify-content: space-between; gap: 2em; }
            h1 { font-size: 20pt; margin: 0 0 .4em; }
            .issuer strong { font-size: 13pt; }
            table { border-collapse: collapse; }
            .facts th { text-align: left; font-weight: normal; color: #555; padding: 1px 1em 1px 0; }
            .lines { width: 100%; margin: 2em 0 1em; }
            .lines th, .lines td { border-bottom: 1px solid #999; padding: .4em; text-align: left; }
            .lines .amount { text-align: right; white-space: nowrap; }
            .total td { font-weight: bold; border-bottom: 2px solid #111; }
            section { margin: 1.5em 0; }
            h2 { font-size: 11pt; margin: 0 0 .3em; text-transform: uppercase; color: #555; }
            .small { font-size: 9pt; color: #555; margin-top: .4em; }
            header > div { min-width: 0; overflow-wrap: anywhere; }
            footer { margin-top: 3em; font-size: 9pt; color: #444; border-top: 1px solid #ccc; padding-top: .5em; }
            .stamp { position: absolute; top: 35%; left: 25%; font-size: 64pt; color: rgba(160, 0, 0, .25); transform: rotate(-20deg); border: 6px solid rgba(160, 0, 0, .25); padding: 0 .3em; }
            </style></head>
            <body>
            \(stamp)
            <header>
            <div class="issuer"><strong>\(e(text.issuerName))</strong>\(issuer)</div>
            <div><h1>Invoice</h1><table class="facts">\(facts)</table></div>
            </header>
            <section><h2>Bill to</h2>\(billTo)</section>
            <table class="lines"><thead><tr><th scope="col">Description</th><th scope="col" class="amount">Amount</th></tr></thead>
            <tbody><tr><td>\(text.lineDescription.split(separator: "\n").map { e(String($0)) }.joined(separator: "<br>"))</td><td class="amount">\(e(text.amount))</td></tr>
            <tr class="total"><td>Total</td><td class="amount">\(e(text.total))</td></tr></tbody></table>
            <section><p>\(e(text.instruction))</p></section>
            <section><h2>Bank details</h2>\(bank)<div class="small">Payment \(e(text.paymentID))</div></section>
            <footer>\(legal)</footer>
            </body></html>
            """
    }
}
