internal import BillingCore
internal import GRDB

/// Rows of `idempotency_keys`: one per account, operation and key.
enum IdempotencyRepository {
    static func fetch(
        _ db: Database,
        accountID: String,
        operation: Idempotency.Operation,
        key: IdempotencyKey
    ) throws -> IdempotencyRecord? {
        guard
            let row = try Row.fetchOne(
                db.cachedStatement(
                    sql: "SELECT * FROM idempotency_keys WHERE account_id = ? AND operation = ? AND key = ?"
                ),
                arguments: [accountID, operation.rawValue, key.key]
            )
        else { return nil }
        return IdempotencyRecord(
            accountID: row["account_id"],
            operation: operation,
            key: row["key"],
            fingerprint: row["fingerprint"],
            resultID: row["result_id"],
            createdAtMs: row["created_at_ms"],
            expiresAtMs: row["expires_at_ms"]
        )
    }

    /// Remembers a key, replacing an expired record of it (a live one is
    /// never replaced: `Idempotency.replay` returned it instead).
    static func remember(_ db: Database, _ record: IdempotencyRecord) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO idempotency_keys (account_id, operation, key, fingerprint, result_id, created_at_ms, expires_at_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (account_id, operation, key) DO UPDATE SET fingerprint = excluded.fingerprint,
                    result_id = excluded.result_id, created_at_ms = excluded.created_at_ms, expires_at_ms = excluded.expires_at_ms
                WHERE expires_at_ms <= excluded.created_at_ms
                """
        ).execute(arguments: [
            record.accountID, record.operation.rawValue, record.key, record.fingerprint, record.resultID,
            record.createdAtMs, record.expiresAtMs,
        ]
        )
        try Rows.expectOneChange(db, "idempotency key \(record.key.prefix(64))")
    }
}
