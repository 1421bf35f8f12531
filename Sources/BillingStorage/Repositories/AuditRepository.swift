internal import BillingCore

/// Rows of `audit_log`: appended in the transaction of the change they
/// record (the table refuses UPDATE and DELETE), read by account.
enum AuditRepository {
    static func append(_ db: any SQLSession, _ entry: AuditEntry) throws {
        // The account an entry belongs to, through the payer or payment it names.
        let account: String
        let key: String
        switch entry.owner {
        case .account(let id): (account, key) = ("?", id)
        case .payer(let id): (account, key) = ("(SELECT account_id FROM payers WHERE id = ?)", id)
        case .payment(let id): (account, key) = ("(SELECT account_id FROM payments WHERE id = ?)", id)
        }
        try db.execute(
            """
            INSERT INTO audit_log (account_id, payment_id, subject, action, detail, actor, via, at_ms)
            VALUES (\(account), ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                key, entry.paymentID, entry.subject, entry.action, entry.detail, entry.who, entry.via, entry.atMs,
            ]
        )
    }

    static func page(_ db: any SQLSession, _ query: AuditQuery) throws -> [AuditRecord] {
        var sql = "SELECT * FROM audit_log WHERE account_id = ? AND id > ?"
        var arguments: [any SQLArgument] = [query.accountID, query.afterID]
        if let payment = query.paymentID {
            sql += " AND payment_id = ?"
            arguments += [payment]
        }
        if let since = query.sinceMs {
            sql += " AND at_ms >= ?"
            arguments += [since]
        }
        sql += " ORDER BY id LIMIT ?"
        arguments += [query.limit]
        return try db.rows(sql, arguments).map { row in
            AuditRecord(
                id: try row.get("id"),
                accountID: try row.get("account_id"),
                paymentID: try row.get("payment_id"),
                subject: try row.get("subject"),
                action: try row.get("action"),
                detail: try row.get("detail"),
                who: try row.get("actor"),
                via: try row.get("via"),
                atMs: try row.get("at_ms")
            )
        }
    }
}
