internal import BillingCore
internal import GRDB

/// Rows of `ledger`: append-only (triggers refuse UPDATE and DELETE), one
/// entry per key (a unique index).
enum LedgerRepository {
    /// The entry, and the account's cached balance moved with it.
    static func append(_ db: Database, _ entry: LedgerEntry) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO ledger (account_id, amount_minor, currency, entry_key, payment_id, reference, created_at_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            entry.accountID, entry.amount.amountMinorUnits, entry.amount.currency.code, entry.key, entry.paymentID,
            entry.reference, entry.atMs,
        ]
        )
        try AccountRepository.moveBalance(db, entry)
    }

    static func sum(_ db: Database, accountID: String) throws -> Int64 {
        try Int64.fetchOne(
            db.cachedStatement(sql: "SELECT COALESCE(SUM(amount_minor), 0) FROM ledger WHERE account_id = ?"),
            arguments: [accountID]
        ) ?? 0
    }

    static func creditCount(_ db: Database, paymentID: String) throws -> Int {
        try Int.fetchOne(
            db.cachedStatement(sql: "SELECT COUNT(*) FROM ledger WHERE entry_key = 'credit:' || ?"),
            arguments: [paymentID]
        ) ?? 0
    }

    /// Whether an entry of this key exists (keys are unique in the whole ledger).
    static func hasEntry(_ db: Database, key: String) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM ledger WHERE entry_key = ?"), arguments: [key]) == true
    }

    /// A payment's reversal entries (key, signed minor units), for
    /// `Reversals.History`.
    static func reversalEntries(_ db: Database, paymentID: String) throws -> [(key: String, minorUnits: Int64)] {
        try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT entry_key, amount_minor FROM ledger WHERE payment_id = ? AND substr(entry_key, 1, 9) = 'reversal:'
                    """
            ),
            arguments: [paymentID]
        ).map { (key: $0["entry_key"], minorUnits: $0["amount_minor"]) }
    }
}
