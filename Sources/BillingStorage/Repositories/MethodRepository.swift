internal import BillingCore

/// Rows of `payment_methods`. The schema keeps one default per payer
/// (a partial unique index) and a default always Confirmed (a CHECK).
enum MethodRepository {
    static func require(_ db: any SQLSession, _ id: String) throws -> PaymentMethod {
        guard let method = try fetch(db, id) else {
            throw BillingError.notFound("payment method \(id.prefix(64)) not found")
        }
        return method
    }

    static func fetch(_ db: any SQLSession, _ id: String) throws -> PaymentMethod? {
        try db.row("SELECT * FROM payment_methods WHERE id = ?", [id]).map(
            method
        )
    }

    /// The payer's methods, newest first; Removed ones only when asked.
    static func methods(_ db: any SQLSession, payerID: String, includeRemoved: Bool) throws -> [PaymentMethod] {
        let filter = includeRemoved ? "" : "AND status != 'removed'"
        return try db.rows(
            "SELECT * FROM payment_methods WHERE payer_id = ? \(filter) ORDER BY created_at_ms DESC, id DESC",
            [payerID]
        ).map(method)
    }

    static func defaultMethod(_ db: any SQLSession, payerID: String) throws -> PaymentMethod? {
        try db.row("SELECT * FROM payment_methods WHERE payer_id = ? AND is_default = 1", [payerID]).map(method)
    }

    /// Methods still Pending whose payment was Paid before `cutoffMs`, with
    /// that payment's id and account (at most 100 a call).
    static func stalePending(
        _ db: any SQLSession,
        paidBefore cutoffMs: Int64
    ) throws -> [(method: PaymentMethod, paymentID: String, accountID: String)] {
        try db.rows(
            """
            SELECT m.*, p.id AS paid_payment_id, p.account_id AS paid_account_id FROM payment_methods m
            JOIN payments p ON p.id = m.saved_with_payment_id
            WHERE m.status = 'pending' AND p.status = 'paid' AND p.finished_at_ms < ? LIMIT 100
            """,
            [cutoffMs]
        ).map { row in (try method(row), try row.get("paid_payment_id"), try row.get("paid_account_id")) }
    }

    static func insert(_ db: any SQLSession, _ method: PaymentMethod) throws {
        try db.execute(
            """
            INSERT INTO payment_methods (id, payer_id, system, status, is_default, display_name, provider_reference,
                saved_with_payment_id, created_at_ms, updated_at_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                method.id, method.payerID, method.system.rawValue, method.status.rawValue, method.isDefault,
                method.displayName, method.providerReference, method.savedWithPaymentID, method.createdAtMs,
                method.updatedAtMs,
            ]
        )
    }

    /// Everything that changes about a method, as a compare-and-set on the
    /// status it was decided from.
    static func update(_ db: any SQLSession, _ method: PaymentMethod, expected: PaymentMethodStatus) throws {
        try db.execute(
            """
            UPDATE payment_methods SET status = ?, is_default = ?, display_name = ?, provider_reference = ?, updated_at_ms = ?
            WHERE id = ? AND status = ?
            """,
            [
                method.status.rawValue, method.isDefault, method.displayName, method.providerReference,
                method.updatedAtMs,
                method.id, expected.rawValue,
            ]
        )
        try Rows.expectOneChange(db, "payment method \(method.id)")
    }

    private static func method(_ row: SQLRow) throws -> PaymentMethod {
        PaymentMethod(
            id: try row.get("id"),
            payerID: try row.get("payer_id"),
            system: try Rows.decode(PaymentSystem.self, row, "system", table: "payment_methods"),
            status: try Rows.decode(PaymentMethodStatus.self, row, "status", table: "payment_methods"),
            isDefault: try row.get("is_default"),
            displayName: try row.get("display_name"),
            providerReference: try row.get("provider_reference"),
            savedWithPaymentID: try row.get("saved_with_payment_id"),
            createdAtMs: try row.get("created_at_ms"),
            updatedAtMs: try row.get("updated_at_ms")
        )
    }
}
