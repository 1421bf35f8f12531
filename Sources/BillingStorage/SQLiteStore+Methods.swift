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

    /// A method still Pending after its payment was Paid (PayPal sent the
    /// vault's id later, in a webhook): Confirmed now with that reference.
    /// Returns false when there is no such Pending method (sent twice, or
    /// already ended).
    public func confirmLateMethod(paymentReference: String, system: PaymentSystem, methodReference: String,
                                  displayName: String) async throws(BillingError) -> Bool {
        try Text.check(methodReference, "method reference", max: 255, required: true)
        try Text.check(displayName, "display name", max: 200)
        let now = clock()
        return try await write { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT p.id AS payment_id, p.payer_id, p.account_id, m.id AS method_id FROM payments p
                JOIN payment_methods m ON m.id = p.saved_payment_method_id
                WHERE p.provider_reference = ? AND p.system = ? AND p.status = 'paid' AND m.status = 'pending'
                """, arguments: [paymentReference, system.rawValue]) else { return false }
            let outcome = TransitionOutcome.paid(savedMethodReference: methodReference, displayName: displayName)
            try Self.confirmMethod(db, methodID: row["method_id"], payerID: row["payer_id"], outcome: outcome, accountID: row["account_id"], now: now)
            return true
        }
    }

    /// Methods still Pending whose payment was Paid before `cutoffMs`: the
    /// payment system never sent what they need, so they end Failed (with a
    /// notification), not Pending forever. Returns how many.
    public func failStalePendingMethods(paidBeforeMs cutoffMs: Int64) async throws(BillingError) -> Int {
        let now = clock()
        return try await write { db in
            let stale = try Row.fetchAll(db, sql: """
                SELECT m.id, p.account_id, p.id AS payment_id, m.display_name FROM payment_methods m
                JOIN payments p ON p.id = m.saved_with_payment_id
                WHERE m.status = 'pending' AND p.status = 'paid' AND p.finished_at_ms < ? LIMIT 100
                """, arguments: [cutoffMs])
            for row in stale {
                let accountID: String = row["account_id"]
                try Self.setMethodStatus(db, methodID: row["id"], from: .pending, to: .failed, accountID: accountID, now: now)
                let notification = Notification(id: IDs.make("ntf"), accountID: accountID, severity: .error, title: "Saving the method failed",
                                                body: "The payment system never sent the saved method; the payment itself went through. Save it again with your next payment.",
                                                paymentID: row["payment_id"], createdAtMs: now)
                try Self.insertNotification(db, notification)
                try Self.appendEvent(db, accountID: accountID, atMs: now, .notification(notification))
            }
            return stale.count
        }
    }

    /// The payer's customer at a payment system (Stripe's cus_…), if one was
    /// made: the one recorded, or, for a payer saved before they were
    /// recorded, the customer of its newest Confirmed Stripe method.
    public func payerCustomer(payerID: String, system: PaymentSystem) async throws(BillingError) -> String? {
        try await read { db in
            if let recorded = try String.fetchOne(db, sql: "SELECT customer_reference FROM payer_customers WHERE payer_id = ? AND system = ?",
                                                  arguments: [payerID, system.rawValue]) {
                return recorded
            }
            guard system == .stripe else { return nil }
            let reference = try String.fetchOne(db, sql: """
                SELECT provider_reference FROM payment_methods WHERE payer_id = ? AND system = 'stripe' AND status = 'confirmed'
                  AND provider_reference LIKE 'cus_%/%' ORDER BY updated_at_ms DESC LIMIT 1
                """, arguments: [payerID])
            return reference.flatMap { $0.split(separator: "/").first.map(String.init) }
        }
    }

    /// Records the payer's customer at a payment system (first one wins).
    public func setPayerCustomer(payerID: String, system: PaymentSystem, reference: String) async throws(BillingError) {
        try Text.check(reference, "customer reference", max: 255, required: true)
        try await write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO payer_customers (payer_id, system, customer_reference) VALUES (?, ?, ?)",
                           arguments: [payerID, system.rawValue, reference])
        }
    }
}
