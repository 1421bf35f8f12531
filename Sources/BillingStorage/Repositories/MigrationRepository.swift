internal import BillingCore

/// Rows of `migration_orders` (one per account and external id).
enum MigrationRepository {
    static func require(_ db: any SQLSession, _ id: String) throws -> MigrationOrder {
        guard
            let row = try db.row("SELECT * FROM migration_orders WHERE id = ?", [id])
        else {
            throw BillingError.notFound("migration order \(id.prefix(64)) not found")
        }
        return try order(row)
    }

    static func byExternalID(_ db: any SQLSession, accountID: String, externalID: String) throws -> MigrationOrder? {
        try db.row("SELECT * FROM migration_orders WHERE account_id = ? AND external_id = ?", [accountID, externalID])
            .map(order)
    }

    static func insert(_ db: any SQLSession, _ order: MigrationOrder) throws {
        try db.execute(
            """
            INSERT INTO migration_orders (id, account_id, external_id, description, price_minor, currency, status, payment_id,
                created_at_ms, paid_at_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                order.id, order.accountID, order.externalID, order.description, order.serverPrice.amountMinorUnits,
                order.serverPrice.currency.code, order.status.rawValue, order.paymentID, order.createdAtMs,
                order.paidAtMs,
            ]
        )
    }

    /// Status, payment and paid time, as a compare-and-set on the status decided from.
    static func update(_ db: any SQLSession, _ order: MigrationOrder, expected: MigrationOrder.Status) throws {
        try db.execute(
            "UPDATE migration_orders SET status = ?, payment_id = ?, paid_at_ms = ? WHERE id = ? AND status = ?",
            [order.status.rawValue, order.paymentID, order.paidAtMs, order.id, expected.rawValue]
        )
        try Rows.expectOneChange(db, "migration order \(order.id)")
    }

    private static func order(_ row: SQLRow) throws -> MigrationOrder {
        MigrationOrder(
            id: try row.get("id"),
            accountID: try row.get("account_id"),
            externalID: try row.get("external_id"),
            description: try row.get("description"),
            serverPrice: Money(minorUnits: try row.get("price_minor"), try Rows.currency(try row.get("currency"))),
            status: try Rows.decode(MigrationOrder.Status.self, row, "status", table: "migration_orders"),
            paymentID: try row.get("payment_id"),
            createdAtMs: try row.get("created_at_ms"),
            paidAtMs: try row.get("paid_at_ms")
        )
    }
}
