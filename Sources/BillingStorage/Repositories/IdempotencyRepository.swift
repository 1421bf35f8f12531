internal import BillingCore

/// Rows of `idempotency_keys`: one per account, operation and key.
enum IdempotencyRepository {
    static func fetch(
        _ db: any SQLSession,
        accountID: String,
        operation: Idempotency.Operation,
        key: IdempotencyKey
    ) throws -> IdempotencyRecord? {
        guard
            let row = try db.row(
                "SELECT * FROM idempotency_keys WHERE account_id = ? AND operation = ? AND key = ?",
                [accountID, operation.rawValue, key.key]
            )
        else { return nil }
        return IdempotencyRecord(
            accountID: try row.get("account_id"),
            operation: operation,
            key: try row.get("key"),
            fingerprint: try row.get("fingerprint"),
            resultID: try row.get("result_id"),
            createdAtMs: try row.get("created_at_ms"),
            expiresAtMs: try row.get("expires_at_ms")
        )
    }

    /// Remembers a key, replacing an expired record of it (a live one is
    /// never replaced: `Idempotency.replay` returned it instead).
    static func remember(_ db: any SQLSession, _ record: IdempotencyRecord) throws {
        try db.execute(
            """
            INSERT INTO idempotency_keys (account_id, operation, key, fingerprint, result_id, created_at_ms, expires_at_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (account_id, operation, key) DO UPDATE SET fingerprint = excluded.fingerprint,
                result_id = excluded.result_id, created_at_ms = excluded.created_at_ms, expires_at_ms = excluded.expires_at_ms
            WHERE idempotency_keys.expires_at_ms <= excluded.created_at_ms
            """,
            [
                record.accountID, record.operation.rawValue, record.key, record.fingerprint, record.resultID,
                record.createdAtMs, record.expiresAtMs,
            ]
        )
        try Rows.expectOneChange(db, "idempotency key \(record.key.prefix(64))")
    }
}
