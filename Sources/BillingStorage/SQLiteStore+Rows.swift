internal import BillingCore
internal import Foundation
internal import GRDB

/// Row mapping and the steps transactions share. Everything here runs inside
/// a transaction opened by a public method.
extension SQLiteStore {
    static func requirePayment(_ db: Database, _ id: String) throws -> Payment {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM payments WHERE id = ?", arguments: [id]) else {
            throw BillingError.notFound("payment \(id.prefix(64)) not found")
        }
        return try payment(row)
    }

    static func payment(_ row: Row) throws -> Payment {
        let currency = try currency(row["currency"])
        func decode<T: RawRepresentable>(_ type: T.Type, _ column: String) throws -> T where T.RawValue == String {
            guard let value = T(rawValue: row[column]) else {
                throw BillingError.storage("payments.\(column) holds an unknown value", retryable: false)
            }
            return value
        }
        let system: String? = row["system"]
        return Payment(
            id: row["id"], accountID: row["account_id"], payerID: row["payer_id"],
            purpose: try decode(PaymentPurpose.self, "purpose"),
            amount: Money(minorUnits: row["amount_minor"], currency),
            status: try decode(PaymentStatus.self, "status"),
            optionKind: try decode(PaymentOptionKind.self, "option_kind"),
            system: system.flatMap(PaymentSystem.init(rawValue:)),
            paymentMethodID: row["payment_method_id"], savedPaymentMethodID: row["saved_payment_method_id"],
            providerReference: row["provider_reference"], redirectURL: row["redirect_url"], returnURL: row["return_url"],
            invoiceNumber: row["invoice_number"], failureReason: row["failure_reason"],
            renewalOrderID: row["renewal_order_id"], migrationOrderID: row["migration_order_id"],
            createdAtMs: row["created_at_ms"], updatedAtMs: row["updated_at_ms"], finishedAtMs: row["finished_at_ms"],
            nextCheckAtMs: row["next_check_at_ms"], checkAttempts: row["check_attempts"]
        )
    }

    static func method(_ row: Row) throws -> PaymentMethod {
        guard let system = PaymentSystem(rawValue: row["system"]), let status = PaymentMethodStatus(rawValue: row["status"]) else {
            throw BillingError.storage("payment_methods holds an unknown value", retryable: false)
        }
        return PaymentMethod(
            id: row["id"], payerID: row["payer_id"], system: system, status: status, isDefault: row["is_default"],
            displayName: row["display_name"], providerReference: row["provider_reference"],
            savedWithPaymentID: row["saved_with_payment_id"], createdAtMs: row["created_at_ms"], updatedAtMs: row["updated_at_ms"]
        )
    }

    static func requireMethod(_ db: Database, _ id: String) throws -> PaymentMethod {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM payment_methods WHERE id = ?", arguments: [id]) else {
            throw BillingError.notFound("payment method \(id.prefix(64)) not found")
        }
        return try method(row)
    }

    static func event(_ row: Row) throws -> Event {
        let payload: String = row["payload"]
        let change = try JSONDecoder().decode(Event.Change.self, from: Data(payload.utf8))
        let sequence: Int64 = row["sequence"]
        let accountSequence: Int64 = row["account_sequence"]
        return Event(sequence: UInt64(sequence), accountSequence: UInt64(accountSequence), accountID: row["account_id"], atMs: row["at_ms"],
                     change: change)
    }

    /// Inserts a New payment (and its Pending method, if one is being saved)
    /// with their events, after checking the option against the payer.
    static func insertPayment(_ db: Database, account: Account, payer: Payer, purpose: PaymentPurpose, amount: Money,
                              option: PaymentOption, limits: PaymentLimits, now: Int64, migrationOrderID: String? = nil,
                              renewalOrderID: String? = nil) throws -> Payment {
        let id = IDs.make("pay")
        var system: PaymentSystem?
        var chargedMethodID: String?
        var savedMethodID: String?
        var returnURL = ""
        var invoiceNumber: String?
        var nextCheck: Int64? = now
        switch option {
        case .invoice:
            // Invoices are settled by an operator, never polled.
            nextCheck = nil
            var reference = IDs.invoiceReference()
            while try Bool.fetchOne(db, sql: "SELECT 1 FROM payments WHERE invoice_number = ?", arguments: [reference]) == true {
                reference = IDs.invoiceReference()
            }
            invoiceNumber = reference
        case .savedMethod(let methodID):
            let method = try requireMethod(db, methodID)
            guard method.payerID == payer.id else {
                throw BillingError.notFound("payment method \(methodID.prefix(64)) not found")
            }
            guard method.status == .confirmed else {
                throw BillingError.failedPrecondition("payment method \(methodID) is \(method.status.rawValue), not confirmed")
            }
            system = method.system
            chargedMethodID = method.id
        case .paymentSystem(let chosen, let saveMethod, let url):
            system = chosen
            returnURL = url
            if saveMethod {
                let methodID = IDs.make("pm")
                savedMethodID = methodID
                try db.execute(
                    sql: """
                        INSERT INTO payment_methods (id, payer_id, system, status, display_name, saved_with_payment_id, created_at_ms, updated_at_ms)
                        VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)
                        """,
                    arguments: [methodID, payer.id, chosen.rawValue, "\(chosen.displayName) (pending)", id, now, now]
                )
            }
        case .balance:
            throw BillingError.invalidArgument("a balance payment is not a payment record")
        }
        try limits.check(amount, purpose: purpose, system: system)
        try db.execute(
            sql: """
                INSERT INTO payments (id, account_id, payer_id, purpose, amount_minor, currency, status, option_kind, system,
                    payment_method_id, saved_payment_method_id, return_url, invoice_number, migration_order_id,
                    renewal_order_id, created_at_ms, updated_at_ms, next_check_at_ms)
                VALUES (?, ?, ?, ?, ?, ?, 'new', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [id, account.id, payer.id, purpose.rawValue, amount.amountMinorUnits, amount.currency.code,
                        option.kind.rawValue, system?.rawValue, chargedMethodID, savedMethodID, returnURL, invoiceNumber,
                        migrationOrderID, renewalOrderID, now, now, nextCheck]
        )
        let payment = try requirePayment(db, id)
        try appendEvent(db, accountID: account.id, atMs: now, .paymentStatusChanged(payment, previous: nil))
        if let savedMethodID {
            try appendEvent(db, accountID: account.id, atMs: now, .methodStatusChanged(try requireMethod(db, savedMethodID), previous: nil))
        }
        return payment
    }

    static func insertNotification(_ db: Database, _ notification: BillingCore.Notification) throws {
        try db.execute(
            sql: """
                INSERT INTO notifications (id, account_id, severity, title, body, payment_id, created_at_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [notification.id, notification.accountID, notification.severity.rawValue, notification.title,
                        notification.body, notification.paymentID, notification.createdAtMs]
        )
    }

    /// The method saved with a Paid payment, Confirmed with the payment
    /// system's reference. Without one (PayPal may send a vault's id later)
    /// it stays Pending: a Confirmed method must be chargeable.
    static func confirmMethod(_ db: Database, methodID: String, payerID: String, outcome: TransitionOutcome, accountID: String, now: Int64) throws {
        guard let reference = outcome.savedMethodReference, !reference.isEmpty else { return }
        let hasDefault = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM payment_methods WHERE payer_id = ? AND is_default = 1)",
                                           arguments: [payerID]) ?? false
        try db.execute(
            sql: """
                UPDATE payment_methods SET status = 'confirmed', is_default = ?,
                    provider_reference = COALESCE(?, provider_reference), display_name = COALESCE(?, display_name), updated_at_ms = ?
                WHERE id = ? AND status = 'pending'
                """,
            arguments: [!hasDefault, outcome.savedMethodReference, outcome.savedMethodDisplayName, now, methodID]
        )
        if db.changesCount == 1 {
            try appendEvent(db, accountID: accountID, atMs: now, .methodStatusChanged(try requireMethod(db, methodID), previous: .pending))
        }
    }

    static func setMethodStatus(_ db: Database, methodID: String, from: PaymentMethodStatus, to: PaymentMethodStatus, accountID: String, now: Int64) throws {
        // "Sandbox (pending)" was never saved: it is named so once it failed.
        try db.execute(
            sql: """
                UPDATE payment_methods SET status = ?, is_default = 0, updated_at_ms = ?,
                    display_name = CASE WHEN ? = 'failed' THEN REPLACE(display_name, ' (pending)', ' (not saved)') ELSE display_name END
                WHERE id = ? AND status = ?
                """,
            arguments: [to.rawValue, now, to.rawValue, methodID, from.rawValue]
        )
        if db.changesCount == 1 {
            try appendEvent(db, accountID: accountID, atMs: now, .methodStatusChanged(try requireMethod(db, methodID), previous: from))
        }
    }

    /// nil: the key is new. Otherwise the id of the first result; a different
    /// request under the same key throws. Expired keys are forgotten first.
    static func replay(_ db: Database, accountID: String, operation: String, key: IdempotencyKey, fingerprint: String, now: Int64) throws -> String? {
        try db.execute(sql: "DELETE FROM idempotency_keys WHERE account_id = ? AND operation = ? AND key = ? AND expires_at_ms <= ?",
                       arguments: [accountID, operation, key.key, now])
        guard let row = try Row.fetchOne(db, sql: "SELECT fingerprint, result_id FROM idempotency_keys WHERE account_id = ? AND operation = ? AND key = ?",
                                         arguments: [accountID, operation, key.key]) else { return nil }
        guard row["fingerprint"] == fingerprint else { throw BillingError.idempotencyKeyReused(key.key) }
        return row["result_id"]
    }

    static func remember(_ db: Database, accountID: String, operation: String, key: IdempotencyKey, fingerprint: String,
                         resultID: String, now: Int64, lifetime: Int64) throws {
        try db.execute(
            sql: """
                INSERT INTO idempotency_keys (account_id, operation, key, fingerprint, result_id, created_at_ms, expires_at_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [accountID, operation, key.key, fingerprint, resultID, now, now + lifetime]
        )
    }
}
