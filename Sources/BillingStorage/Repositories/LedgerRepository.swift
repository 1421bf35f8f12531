internal import BillingCore

/// Rows of `ledger`: append-only (triggers refuse UPDATE and DELETE), one
/// entry per key (a unique index).
enum LedgerRepository {
    /// The entry, and the account's cached balance moved with it.
    static func append(_ db: any SQLSession, _ entry: LedgerEntry) throws {
        try db.execute(
            """
            INSERT INTO ledger (account_id, amount_minor, currency, entry_key, payment_id, reference, created_at_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """,
            [
                entry.accountID, entry.amount.amountMinorUnits, entry.amount.currency.code, entry.key, entry.paymentID,
                entry.reference, entry.atMs,
            ]
        )
        try AccountRepository.moveBalance(db, entry)
    }

    static func sum(_ db: any SQLSession, accountID: String) throws -> Int64 {
        try db.value(Int64.self, "SELECT COALESCE(SUM(amount_minor), 0) FROM ledger WHERE account_id = ?", [accountID])
            ?? 0
    }

    static func creditCount(_ db: any SQLSession, paymentID: String) throws -> Int {
        try db.value(Int.self, "SELECT COUNT(*) FROM ledger WHERE entry_key = 'credit:' || ?", [paymentID]) ?? 0
    }

    /// Whether an entry of this key exists (keys are unique in the whole ledger).
    static func hasEntry(_ db: any SQLSession, key: String) throws -> Bool {
        try db.value(Bool.self, "SELECT 1 FROM ledger WHERE entry_key = ?", [key]) == true
    }

    /// A payment's reversal entries (key, signed minor units), for
    /// `Reversals.History`.
    static func reversalEntries(_ db: any SQLSession, paymentID: String) throws -> [(key: String, minorUnits: Int64)] {
        try db.rows(
            """
            SELECT entry_key, amount_minor FROM ledger WHERE payment_id = ? AND substr(entry_key, 1, 9) = 'reversal:'
            """,
            [paymentID]
        ).map { (key: try $0.get("entry_key"), minorUnits: try $0.get("amount_minor")) }
    }
}
