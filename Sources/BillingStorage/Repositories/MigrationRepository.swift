internal import BillingCore
internal import GRDB

/// Rows of `migration_orders` (one per account and external id).
enum MigrationRepository {
    static func require(_ db: Database, _ id: String) throws -> MigrationOrder {
        guard
            let row = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT * FROM migration_orders WHERE id = ?"),
                arguments: [id]
            )
        else {
            throw BillingError.notFound("migration order \(id.prefix(64)) not found")
        }
        return try order(row)
    }

    static func byExternalID(_ db: Database, accountID: String, externalID: String) throws -> MigrationOrder? {
        try Row.fetchOne(
            db.cachedStatement(sql: "SELECT * FROM migration_orders WHERE account_id = ? AND external_id = ?"),
            arguments: [accountID, externalID]
        ).map(order)
    }

    static func insert(_ db: Database, _ order: MigrationOrder) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO migration_orders (id, account_id, external_id, description, price_minor, currency, status, payment_id,
                    created_at_ms, paid_at_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            order.id, order.accountID, order.externalID, order.description, order.serverPrice.amountMinorUnits,
            order.serverPrice.currency.code, order.status.rawValue, order.paymentID, order.createdAtMs,
            order.paidAtMs,
        ]
        )
    }

    /// Status, payment and paid time, as a compare-and-set on the status decided from.
    static func update(_ db: Database, _ order: MigrationOrder, expected: MigrationOrder.Status) throws {
        try db.cachedStatement(
            sql: "UPDATE migration_orders SET status = ?, payment_id = ?, paid_at_ms = ? WHERE id = ? AND status = ?"
        ).execute(arguments: [order.status.rawValue, order.paymentID, order.paidAtMs, order.id, expected.rawValue]
        )
        try Rows.expectOneChange(db, "migration order \(order.id)")
    }

    private static func order(_ row: Row) throws -> MigrationOrder {
        MigrationOrder(
            id: row["id"],
            accountID: row["account_id"],
            externalID: row["external_id"],
            description: row["description"],
            serverPrice: Money(minorUnits: row["price_minor"], try Rows.currency(row["currency"])),
            status: try Rows.decode(MigrationOrder.Status.self, row, "status", table: "migration_orders"),
            paymentID: row["payment_id"],
            createdAtMs: row["created_at_ms"],
            paidAtMs: row["paid_at_ms"]
        )
    }
}
