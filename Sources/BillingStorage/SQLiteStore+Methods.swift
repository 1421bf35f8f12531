public import BillingCore
internal import GRDB

extension SQLiteStore {
    /// The payer's methods, newest first; Removed ones only when asked.
    public func paymentMethods(payerID: String, includeRemoved: Bool) async throws(BillingError) -> [PaymentMethod] {
        try await read { db in
            _ = try Self.requirePayer(db, payerID)
            let filter = includeRemoved ? "" : "AND status != 'removed'"
            return try Row.fetchAll(db, sql: "SELECT * FROM payment_methods WHERE payer_id = ? \(filter) ORDER BY created_at_ms DESC, id DESC",
                                    arguments: [payerID]).map(Self.method)
        }
    }

    public func paymentMethod(_ id: String) async throws(BillingError) -> PaymentMethod {
        try await read { db in try Self.requireMethod(db, id) }
    }

    /// Makes a Confirmed method its payer's default; the previous one stops
    /// being it in the same transaction.
    public func setDefaultMethod(_ id: String) async throws(BillingError) -> PaymentMethod {
        let now = clock()
        return try await write { db in
            let method = try Self.requireMethod(db, id)
            guard method.status == .confirmed else {
                throw BillingError.failedPrecondition("payment method \(id) is \(method.status.rawValue); only a confirmed method can be the default")
            }
            try db.execute(sql: "UPDATE payment_methods SET is_default = 0, updated_at_ms = ? WHERE payer_id = ? AND is_default = 1 AND id != ?",
                           arguments: [now, method.payerID, id])
            try db.execute(sql: "UPDATE payment_methods SET is_default = 1, updated_at_ms = ? WHERE id = ?", arguments: [now, id])
            return try Self.requireMethod(db, id)
        }
    }

    /// Marks a method Removed (the caller detaches it at the payment system
    /// first). Removing a Removed method returns it unchanged.
    public func removeMethod(_ id: String) async throws(BillingError) -> PaymentMethod {
        let now = clock()
        return try await write { db in
            let method = try Self.requireMethod(db, id)
            if method.status == .removed { return method }
            let payer = try Self.requirePayer(db, method.payerID)
            try Self.setMethodStatus(db, methodID: id, from: method.status, to: .removed, accountID: payer.accountID, now: now)
            return try Self.requireMethod(db, id)
        }
    }
}
