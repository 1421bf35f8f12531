internal import BillingCore
internal import Foundation
internal import GRDB

/// Rows of `invoices` and their series' counters in `invoice_counters`.
enum InvoiceRepository {
    /// The number after the series' last (1 for a new series). Taken for
    /// good by `insert` in the same transaction.
    static func next(_ db: Database, series: String) throws -> InvoiceNumber {
        let last =
            try Int64.fetchOne(
                db.cachedStatement(sql: "SELECT last_sequence FROM invoice_counters WHERE series = ?"),
                arguments: [series]
            ) ?? 0
        return InvoiceNumber(series: series, sequence: last + 1)
    }

    /// The invoice, and its series' counter moved to its number as a
    /// compare-and-set on the number before it: no gap, no number twice.
    static func insert(_ db: Database, _ invoice: Invoice) throws {
        if invoice.sequence == 1 {
            try db.cachedStatement(sql: "INSERT INTO invoice_counters (series, last_sequence) VALUES (?, 1)")
                .execute(arguments: [invoice.series])
        } else {
            try db.cachedStatement(
                sql: "UPDATE invoice_counters SET last_sequence = ? WHERE series = ? AND last_sequence = ?"
            ).execute(arguments: [invoice.sequence, invoice.series, invoice.sequence - 1])
            try Rows.expectOneChange(db, "invoice series \(invoice.series)")
        }
        let issuer = String(decoding: try JSONEncoder().encode(invoice.issuer), as: UTF8.self)
        try db.cachedStatement(
            sql: """
                INSERT INTO invoices (number, series, sequence, payment_id, account_id, payer_id, payer_name, payer_email,
                    description, amount_minor, currency, issued_at_ms, due_at_ms, issuer)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            invoice.number, invoice.series, invoice.sequence, invoice.paymentID, invoice.accountID, invoice.payerID,
            invoice.payerName, invoice.payerEmail, invoice.description, invoice.amount.amountMinorUnits,
            invoice.amount.currency.code, invoice.issuedAtMs, invoice.dueAtMs, issuer,
        ])
    }

    static func fetch(_ db: Database, number: String) throws -> Invoice? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM invoices WHERE number = ?"), arguments: [number])
            .map(invoice)
    }

    static func fetch(_ db: Database, paymentID: String) throws -> Invoice? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM invoices WHERE payment_id = ?"), arguments: [paymentID])
            .map(invoice)
    }

    private static func invoice(_ row: Row) throws -> Invoice {
        let issuer: InvoiceIssuer
        do {
            issuer = try JSONDecoder().decode(InvoiceIssuer.self, from: Data((row["issuer"] as String).utf8))
        } catch {
            throw BillingError.storage(
                "invoices.issuer of \(row["number"] as String) is not readable",
                retryable: false
            )
        }
        return Invoice(
            number: row["number"],
            series: row["series"],
            sequence: row["sequence"],
            paymentID: row["payment_id"],
            accountID: row["account_id"],
            payerID: row["payer_id"],
            payerName: row["payer_name"],
            payerEmail: row["payer_email"],
            description: row["description"],
            amount: Money(minorUnits: row["amount_minor"], try Rows.currency(row["currency"])),
            issuedAtMs: row["issued_at_ms"],
            dueAtMs: row["due_at_ms"],
            issuer: issuer
        )
    }
}
