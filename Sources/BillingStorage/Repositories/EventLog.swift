internal import BillingCore
internal import Foundation
internal import GRDB

/// Rows of `events`: append-only, numbered gap-free globally and per
/// account. Each number is MAX + 1 inside the writing transaction; SQLite
/// has one writer, so no two transactions take the same one.
enum EventLog {
    static func append(_ db: Database, accountID: String, atMs: Int64, _ change: Event.Change) throws {
        let next = try Int64.fetchOne(db.cachedStatement(sql: "SELECT COALESCE(MAX(sequence), 0) + 1 FROM events")) ?? 1
        let nextOfAccount =
            try Int64.fetchOne(
                db.cachedStatement(
                    sql: "SELECT COALESCE(MAX(account_sequence), 0) + 1 FROM events WHERE account_id = ?"
                ),
                arguments: [accountID]
            ) ?? 1
        let payload = String(decoding: try JSONEncoder().encode(change), as: UTF8.self)
        try db.cachedStatement(
            sql:
                "INSERT INTO events (sequence, account_sequence, account_id, at_ms, kind, payload) VALUES (?, ?, ?, ?, ?, ?)"
        ).execute(arguments: [next, nextOfAccount, accountID, atMs, change.kind, payload]
        )
    }

    /// Events after `sequence`, oldest first: of one account by its account
    /// sequence, or of all by the global one.
    static func events(_ db: Database, after sequence: UInt64, accountID: String?, limit: Int) throws -> [Event] {
        let rows: [Row]
        if let accountID {
            rows = try Row.fetchAll(
                db.cachedStatement(
                    sql:
                        "SELECT * FROM events WHERE account_id = ? AND account_sequence > ? ORDER BY account_sequence LIMIT ?"
                ),
                arguments: [accountID, Int64(clamping: sequence), limit]
            )
        } else {
            rows = try Row.fetchAll(
                db.cachedStatement(sql: "SELECT * FROM events WHERE sequence > ? ORDER BY sequence LIMIT ?"),
                arguments: [Int64(clamping: sequence), limit]
            )
        }
        return try rows.map(event)
    }

    /// The account's newest account sequence (0 before any).
    static func latest(_ db: Database, accountID: String) throws -> UInt64 {
        UInt64(
            try Int64.fetchOne(
                db.cachedStatement(sql: "SELECT COALESCE(MAX(account_sequence), 0) FROM events WHERE account_id = ?"),
                arguments: [accountID]
            ) ?? 0
        )
    }

    /// The newest global sequence (0 before any).
    static func latest(_ db: Database) throws -> UInt64 {
        UInt64(try Int64.fetchOne(db.cachedStatement(sql: "SELECT COALESCE(MAX(sequence), 0) FROM events")) ?? 0)
    }

    private static func event(_ row: Row) throws -> Event {
        let payload: String = row["payload"]
        let change = try JSONDecoder().decode(Event.Change.self, from: Data(payload.utf8))
        let sequence: Int64 = row["sequence"]
        let accountSequence: Int64 = row["account_sequence"]
        return Event(
            sequence: UInt64(sequence),
            accountSequence: UInt64(accountSequence),
            accountID: row["account_id"],
            atMs: row["at_ms"],
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
