internal import BillingCore
internal import Foundation

/// Rows of `invoices` and their series' counters in `invoice_counters`.
enum InvoiceRepository {
    /// The number after the series' last (1 for a new series). Taken for
    /// good by `insert` in the same transaction.
    static func next(_ db: any SQLSession, series: String) throws -> InvoiceNumber {
        let last =
            try db.value(Int64.self, "SELECT last_sequence FROM invoice_counters WHERE series = ?", [series]) ?? 0
        return InvoiceNumber(series: series, sequence: last + 1)
    }

    /// The invoice, and its series' counter moved to its number as a
    /// compare-and-set on the number before it: no gap, no number twice.
    static func insert(_ db: any SQLSession, _ invoice: Invoice) throws {
        if invoice.sequence == 1 {
            try db.execute("INSERT INTO invoice_counters (series, last_sequence) VALUES (?, 1)", [invoice.series])
        } else {
            try db.execute(
                "UPDATE invoice_counters SET last_sequence = ? WHERE series = ? AND last_sequence = ?",
                [invoice.sequence, invoice.series, invoice.sequence - 1]
            )
            try Rows.expectOneChange(db, "invoice series \(invoice.series)")
        }
        let issuer = String(decoding: try JSONEncoder().encode(invoice.issuer), as: UTF8.self)
        try db.execute(
            """
            INSERT INTO invoices (number, series, sequence, payment_id, account_id, payer_id, payer_name, payer_email,
                description, amount_minor, currency, issued_at_ms, due_at_ms, issuer)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                invoice.number, invoice.series, invoice.sequence, invoice.paymentID, invoice.accountID, invoice.payerID,
                invoice.payerName, invoice.payerEmail, invoice.description, invoice.amount.amountMinorUnits,
                invoice.amount.currency.code, invoice.issuedAtMs, invoice.dueAtMs, issuer,
            ]
        )
    }

    static func fetch(_ db: any SQLSession, number: String) throws -> Invoice? {
        try db.row("SELECT * FROM invoices WHERE number = ?", [number])
            .map(invoice)
    }

    static func fetch(_ db: any SQLSession, paymentID: String) throws -> Invoice? {
        try db.row("SELECT * FROM invoices WHERE payment_id = ?", [paymentID])
            .map(invoice)
    }

    private static func invoice(_ row: SQLRow) throws -> Invoice {
        let issuer: InvoiceIssuer
        do {
            issuer = try JSONDecoder().decode(InvoiceIssuer.self, from: Data((try row.get("issuer") as String).utf8))
        } catch {
            throw BillingError.storage(
                "invoices.issuer of \(try row.get("number") as String) is not readable",
                retryable: false
            )
        }
        return Invoice(
            number: try row.get("number"),
            series: try row.get("series"),
            sequence: try row.get("sequence"),
            paymentID: try row.get("payment_id"),
            accountID: try row.get("account_id"),
            payerID: try row.get("payer_id"),
            payerName: try row.get("payer_name"),
            payerEmail: try row.get("payer_email"),
            description: try row.get("description"),
            amount: Money(minorUnits: try row.get("amount_minor"), try Rows.currency(try row.get("currency"))),
            issuedAtMs: try row.get("issued_at_ms"),
            dueAtMs: try row.get("due_at_ms"),
            issuer: issuer
        )
    }
}
