internal import BillingCore
internal import Foundation

/// Rows of `events`: append-only, numbered gap-free globally and per
/// account. Each number is MAX + 1 inside the writing transaction; writes
/// are serialised (SQLite's one writer, PostgreSQL's write lock), so no two
/// transactions take the same one.
enum EventLog {
    /// One statement: the numbers are read and the row written together
    /// (one round trip to PostgreSQL, not three).
    static func append(_ db: any SQLSession, accountID: String, atMs: Int64, _ change: Event.Change) throws {
        let payload = String(decoding: try JSONEncoder().encode(change), as: UTF8.self)
        try db.execute(
            """
            INSERT INTO events (sequence, account_sequence, account_id, at_ms, kind, payload)
            SELECT (SELECT COALESCE(MAX(sequence), 0) + 1 FROM events),
                (SELECT COALESCE(MAX(account_sequence), 0) + 1 FROM events WHERE account_id = ?), ?, ?, ?, ?
            """,
            [accountID, accountID, atMs, change.kind, payload]
        )
    }

    /// Events after `sequence`, oldest first: of one account by its account
    /// sequence, or of all by the global one.
    static func events(_ db: any SQLSession, after sequence: UInt64, accountID: String?, limit: Int) throws -> [Event] {
        let rows: [SQLRow]
        if let accountID {
            rows = try db.rows(
                "SELECT * FROM events WHERE account_id = ? AND account_sequence > ? ORDER BY account_sequence LIMIT ?",
                [accountID, Int64(clamping: sequence), limit]
            )
        } else {
            rows = try db.rows(
                "SELECT * FROM events WHERE sequence > ? ORDER BY sequence LIMIT ?",
                [Int64(clamping: sequence), limit]
            )
        }
        return try rows.map(event)
    }

    /// The account's newest account sequence (0 before any).
    static func latest(_ db: any SQLSession, accountID: String) throws -> UInt64 {
        UInt64(
            try db.value(
                Int64.self,
                "SELECT COALESCE(MAX(account_sequence), 0) FROM events WHERE account_id = ?",
                [accountID]
            ) ?? 0
        )
    }

    /// The newest global sequence (0 before any).
    static func latest(_ db: any SQLSession) throws -> UInt64 {
        UInt64(try db.value(Int64.self, "SELECT COALESCE(MAX(sequence), 0) FROM events") ?? 0)
    }

    private static func event(_ row: SQLRow) throws -> Event {
        let payload: String = try row.get("payload")
        let change = try JSONDecoder().decode(Event.Change.self, from: Data(payload.utf8))
        let sequence: Int64 = try row.get("sequence")
        let accountSequence: Int64 = try row.get("account_sequence")
        return Event(
            sequence: UInt64(sequence),
            accountSequence: UInt64(accountSequence),
            accountID: try row.get("account_id"),
            atMs: try row.get("at_ms"),
            change: change
        )
    }
}

extension Event.Change {
    /// The `kind` column: what an operator filters on with sqlite3.
    var kind: String {
        switch self {
        case .paymentStatusChanged: return "payment_status_changed"
        case .methodStatusChanged: return "method_status_changed"
        case .balanceChanged: return "balance_changed"
        case .notification: return "notification"
        case .paymentReversed: return "payment_reversed"
        }
    }
}
