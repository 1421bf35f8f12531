internal import BillingCore
internal import GRDB

/// Rows of `payment_methods`. The schema keeps one default per payer
/// (a partial unique index) and a default always Confirmed (a CHECK).
enum MethodRepository {
    static func require(_ db: Database, _ id: String) throws -> PaymentMethod {
        guard let method = try fetch(db, id) else {
            throw BillingError.notFound("payment method \(id.prefix(64)) not found")
        }
        return method
    }

    static func fetch(_ db: Database, _ id: String) throws -> PaymentMethod? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM payment_methods WHERE id = ?"), arguments: [id]).map(
            method
        )
    }

    /// The payer's methods, newest first; Removed ones only when asked.
    static func methods(_ db: Database, payerID: String, includeRemoved: Bool) throws -> [PaymentMethod] {
        let filter = includeRemoved ? "" : "AND status != 'removed'"
        return try Row.fetchAll(
            db.cachedStatement(
                sql: "SELECT * FROM payment_methods WHERE payer_id = ? \(filter) ORDER BY created_at_ms DESC, id DESC"
            ),
            arguments: [payerID]
        ).map(method)
    }

    static func defaultMethod(_ db: Database, payerID: String) throws -> PaymentMethod? {
        try Row.fetchOne(
            db.cachedStatement(sql: "SELECT * FROM payment_methods WHERE payer_id = ? AND is_default = 1"),
            arguments: [payerID]
        ).map(method)
    }

    /// Methods still Pending whose payment was Paid before `cutoffMs`, with
    /// that payment's id and account (at most 100 a call).
    static func stalePending(
        _ db: Database,
        paidBefore cutoffMs: Int64
    ) throws -> [(method: PaymentMethod, paymentID: String, accountID: String)] {
        try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT m.*, p.id AS paid_payment_id, p.account_id AS paid_account_id FROM payment_methods m
                    JOIN payments p ON p.id = m.saved_with_payment_id
                    WHERE m.status = 'pending' AND p.status = 'paid' AND p.finished_at_ms < ? LIMIT 100
                    """
            ),
            arguments: [cutoffMs]
        ).map { row in (try method(row), row["paid_payment_id"], row["paid_account_id"]) }
    }

    static func insert(_ db: Database, _ method: PaymentMethod) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO payment_methods (id, payer_id, system, status, is_default, display_name, provider_reference,
                    saved_with_payment_id, created_at_ms, updated_at_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            method.id, method.payerID, method.system.rawValue, method.status.rawValue, method.isDefault,
            method.displayName, method.providerReference, method.savedWithPaymentID, method.createdAtMs,
            method.updatedAtMs,
        ]
        )
    }

    /// Everything that changes about a method, as a compare-and-set on the
    /// status it was decided from.
    static func update(_ db: Database, _ method: PaymentMethod, expected: PaymentMethodStatus) throws {
        try db.cachedStatement(
            sql: """
                UPDATE payment_methods SET status = ?, is_default = ?, display_name = ?, provider_reference = ?, updated_at_ms = ?
                WHERE id = ? AND status = ?
                """
        ).execute(arguments: [
            method.status.rawValue, method.isDefault, method.displayName, method.providerReference,
            method.updatedAtMs,
            method.id, expected.rawValue,
        ]
        )
        try Rows.expectOneChange(db, "payment method \(method.id)")
    }

    private static func method(_ row: Row) throws -> PaymentMethod {
        PaymentMethod(
            id: row["id"],
            payerID: row["payer_id"],
            system: try Rows.decode(PaymentSystem.self, row, "system", table: "payment_methods"),
            status: try Rows.decode(PaymentMethodStatus.self, row, "status", table: "payment_methods"),
            isDefault: row["is_default"],
            displayName: row["display_name"],
            providerReference: row["provider_reference"],
            savedWithPaymentID: row["saved_with_payment_id"],
            createdAtMs: row["created_at_ms"],
            updatedAtMs: row["updated_at_ms"]
        )
    }
}
