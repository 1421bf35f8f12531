internal import BillingCore

/// Rows of `notifications`.
enum NotificationRepository {
    static func insert(_ db: any SQLSession, _ notification: BillingCore.Notification) throws {
        try db.execute(
            """
            INSERT INTO notifications (id, account_id, severity, title, body, payment_id, created_at_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """,
            [
                notification.id, notification.accountID, notification.severity.rawValue, notification.title,
                notification.body, notification.paymentID, notification.createdAtMs,
            ]
        )
    }

    /// An account's notifications, newest first, paged like payments.
    static func page(
        _ db: any SQLSession,
        accountID: String,
        pageSize: Int,
        after cursor: PageToken?
    ) throws -> Page<BillingCore.Notification> {
        var sql = "SELECT * FROM notifications WHERE account_id = ?"
        var arguments: [any SQLArgument] = [accountID]
        if let cursor {
            sql += " AND (created_at_ms < ? OR (created_at_ms = ? AND id < ?))"
            arguments += [cursor.sortKey, cursor.sortKey, cursor.id]
        }
        let rows = try db.rows(sql + " ORDER BY created_at_ms DESC, id DESC LIMIT ?", arguments + [pageSize + 1])
        var items = try rows.map { row in
            Notification(
                id: try row.get("id"),
                accountID: try row.get("account_id"),
                severity: try Rows.decode(Notification.Severity.self, row, "severity", table: "notifications"),
                title: try row.get("title"),
                body: try row.get("body"),
                paymentID: try row.get("payment_id"),
                createdAtMs: try row.get("created_at_ms")
            )
        }
        var next: String?
        if items.count > pageSize {
            items.removeLast()
            next = PageToken(sortKey: items[items.count - 1].createdAtMs, id: items[items.count - 1].id).encoded
        }
        return Page(items: items, nextPageToken: next)
    }
}
