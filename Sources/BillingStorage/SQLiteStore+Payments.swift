public import BillingCore
internal import GRDB

extension SQLiteStore {
    /// Records a top-up as a New payment, with a Pending method when the payer
    /// asked to save one. The amount is checked against the account's
    /// currency's top-up limits and the payment system's (`PaymentLimits`). Nothing is charged here: the payment system is asked
    /// by the caller afterwards, with this payment's id.
    ///
    /// With an idempotency key, a repeat of the same request returns the first
    /// payment; the same key with a different request throws
    /// `idempotencyKeyReused` and changes nothing.
    public func createTopUp(_ request: TopUpRequest, idempotencyKey: IdempotencyKey?) async throws(BillingError) -> Payment {
        if case .balance = request.option {
            throw .invalidArgument("a top-up cannot be paid from the balance")
        }
        if case .paymentSystem(_, _, let returnURL) = request.option {
            try WebURL.check(returnURL, "return URL")
        }
        let now = clock()
        let lifetime = configuration.idempotencyKeyLifetimeMs
        let limits = configuration.limits
        return try await write { db in
            if let idempotencyKey, let existing = try Self.replay(db, accountID: request.accountID, operation: "create_top_up",
                                                                  key: idempotencyKey, fingerprint: request.fingerprint, now: now) {
                return try Self.requirePayment(db, existing)
            }
            let account = try Self.requireAccount(db, request.accountID)
            guard request.amount.currency == account.currency else {
                throw BillingError.invalidArgument("account \(account.id) pays in \(account.currency), not \(request.amount.currency)")
            }
            let payer = try Self.requirePayer(db, request.payerID)
            guard payer.accountID == account.id else {
                // The same answer as for an id that does not exist: another
                // account's payers are not to be discovered by guessing.
                throw BillingError.notFound("payer \(request.payerID.prefix(64)) not found")
            }
            let payment = try Self.insertPayment(db, account: account, payer: payer, purpose: .topUp, amount: request.amount,
                                                 option: request.option, limits: limits, now: now)
            if let idempotencyKey {
                try Self.remember(db, accountID: account.id, operation: "create_top_up", key: idempotencyKey,
                                  fingerprint: request.fingerprint, resultID: payment.id, now: now, lifetime: lifetime)
            }
            return payment
        }
    }

    public func payment(_ id: String) async throws(BillingError) -> Payment {
        try await read { db in try Self.requirePayment(db, id) }
    }

    /// Records what the payment system gave for a New payment: its own id and
    /// where to send the person. Not a status change, so no event.
    public func attachProviderReference(paymentID: String, reference: String, redirectURL: String) async throws(BillingError) -> Payment {
        try Text.check(reference, "provider reference", max: 255)
        try Text.check(redirectURL, "redirect URL", max: 2048)
        let now = clock()
        return try await write { db in
            try db.execute(
                sql: "UPDATE payments SET provider_reference = ?, redirect_url = ?, updated_at_ms = ? WHERE id = ? AND status = 'new'",
                arguments: [reference, redirectURL, now, paymentID]
            )
            let payment = try Self.requirePayment(db, paymentID)
            guard db.changesCount == 1 else {
                throw BillingError.failedPrecondition("payment \(paymentID) is \(payment.status), not New")
            }
            return payment
        }
    }

    /// The one way a payment leaves New. A compare-and-set on the status inside
    /// one transaction that also writes everything the change implies:
    /// - Paid: the ledger credit (unique per payment), the saved method
    ///   Confirmed (and made the payer's default if it has none), a migration
    ///   or renewal order's debit and completion (with the new expiries);
    /// - Cancelled: the saved method Failed, an error notification, a migration
    ///   order back to awaiting payment, a renewal order cancelled;
    /// and an event for each. The poller, a refresh, an operator and a webhook
    /// all call this; whoever comes second gets `.alreadyFinal`.
    ///
    /// - Throws: `invalidTransition` if the payment already reached the other
    ///   final status; `notFound`.
    public func transition(paymentID: String, _ outcome: TransitionOutcome) async throws(BillingError) -> TransitionResult {
        try Text.check(outcome.failureReason, "failure reason", max: 500)
        let now = clock()
        return try await write { db in
            try Self.applyTransition(db, paymentID: paymentID, outcome, now: now)
        }
    }

    static func applyTransition(_ db: Database, paymentID: String, _ outcome: TransitionOutcome, now: Int64) throws -> TransitionResult {
        let before = try requirePayment(db, paymentID)
        try db.execute(
            sql: """
                UPDATE payments SET status = ?, failure_reason = ?, finished_at_ms = ?, updated_at_ms = ?,
                    next_check_at_ms = NULL, lease_owner = NULL, lease_until_ms = NULL
                WHERE id = ? AND status = 'new'
                """,
            arguments: [outcome.target.rawValue, outcome.failureReason, now, now, paymentID]
        )
        guard db.changesCount == 1 else {
            if before.status == outcome.target { return .alreadyFinal(before) }
            try before.status.checkTransition(to: outcome.target, paymentID: paymentID)
            preconditionFailure("a New payment was not updated by its compare-and-set")
        }
        let after = try requirePayment(db, paymentID)
        let account = try requireAccount(db, after.accountID)
        try appendEvent(db, accountID: account.id, atMs: now, .paymentStatusChanged(after, previous: .new))

        switch outcome.target {
        case .paid:
            try appendLedger(db, account: account, deltaMinor: after.amount.amountMinorUnits, entryKey: "credit:\(after.id)",
                             paymentID: after.id, reference: "payment \(after.id)", atMs: now)
            if let methodID = after.savedPaymentMethodID {
                try confirmMethod(db, methodID: methodID, payerID: after.payerID, outcome: outcome, accountID: account.id, now: now)
            }
            if let orderID = after.migrationOrderID {
                try completeMigrationOrder(db, orderID: orderID, account: account, paymentID: after.id, now: now)
            }
            if let orderID = after.renewalOrderID {
                try completeRenewalOrder(db, orderID: orderID, account: account, paymentID: after.id, now: now)
            }
        case .cancelled:
            if let methodID = after.savedPaymentMethodID {
                try setMethodStatus(db, methodID: methodID, from: .pending, to: .failed, accountID: account.id, now: now)
            }
            if outcome.chargedMethodUnusable, let methodID = after.paymentMethodID {
                try setMethodStatus(db, methodID: methodID, from: .confirmed, to: .failed, accountID: account.id, now: now)
            }
            if let orderID = after.migrationOrderID {
                try db.execute(
                    sql: "UPDATE migration_orders SET status = 'awaiting_payment', payment_id = NULL WHERE id = ? AND payment_id = ?",
                    arguments: [orderID, after.id]
                )
            }
            if let orderID = after.renewalOrderID {
                try db.execute(sql: "UPDATE renewal_orders SET status = 'cancelled' WHERE id = ? AND status = 'awaiting_payment'",
                               arguments: [orderID])
            }
            let reason = outcome.failureReason.isEmpty ? "no reason given" : outcome.failureReason
            let (severity, title, body): (Notification.Severity, String, String) = switch outcome.cancelledBy {
            case .paymentSystem: (.error, "Payment failed", "Payment of \(after.amount) was cancelled: \(reason)")
            case .payer: (.info, "Cancelled by you", "Payment of \(after.amount) was cancelled at your request: \(reason)")
            case .support: (.info, "Cancelled by support", "Payment of \(after.amount) was cancelled by support: \(reason)")
            }
            let notification = Notification(id: IDs.make("ntf"), accountID: account.id, severity: severity, title: title, body: body,
                                            paymentID: after.id, createdAtMs: now)
            try insertNotification(db, notification)
            try appendEvent(db, accountID: account.id, atMs: now, .notification(notification))
        case .new:
            preconditionFailure("TransitionOutcome refuses New")
        }
        return .applied(after)
    }

    /// Payment history, newest first, with a cursor that neither skips nor
    /// repeats rows while new payments arrive (keyset paging on
    /// created_at_ms, id; new payments sort before the cursor).
    public func listPayments(_ query: PaymentQuery) async throws(BillingError) -> Page<Payment> {
        guard (1...200).contains(query.pageSize) else { throw .invalidArgument("page size must be 1 to 200") }
        let cursor = try query.pageToken.map { token throws(BillingError) in try PageToken(token) }
        return try await read { db in
            _ = try Self.requireAccount(db, query.accountID)
            var conditions = ["account_id = ?"]
            var arguments: [any DatabaseValueConvertible] = [query.accountID]
            if !query.statuses.isEmpty {
                conditions.append("status IN (\(query.statuses.map { _ in "?" }.joined(separator: ", ")))")
                arguments += query.statuses.map(\.rawValue).sorted()
            }
            if !query.purposes.isEmpty {
                conditions.append("purpose IN (\(query.purposes.map { _ in "?" }.joined(separator: ", ")))")
                arguments += query.purposes.map(\.rawValue).sorted()
            }
            if let payer = query.payerID { conditions.append("payer_id = ?"); arguments.append(payer) }
            if let from = query.createdFromMs { conditions.append("created_at_ms >= ?"); arguments.append(from) }
            if let to = query.createdToMs { conditions.append("created_at_ms < ?"); arguments.append(to) }
            if let cursor {
                conditions.append("(created_at_ms < ? OR (created_at_ms = ? AND id < ?))")
                arguments += [cursor.sortKey, cursor.sortKey, cursor.id]
            }
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT * FROM payments WHERE \(conditions.joined(separator: " AND ")) ORDER BY created_at_ms DESC, id DESC LIMIT ?",
                arguments: StatementArguments(arguments + [query.pageSize + 1])
            )
            var payments = try rows.map(Self.payment)
            var next: String?
            if payments.count > query.pageSize {
                payments.removeLast()
                next = PageToken(sortKey: payments[payments.count - 1].createdAtMs, id: payments[payments.count - 1].id).encoded
            }
            return Page(items: payments, nextPageToken: next)
        }
    }

    /// Events after `sequence`, oldest first: of one account by its account
    /// sequence, or of all by the global one.
    public func events(after sequence: UInt64, accountID: String?, limit: Int) async throws(BillingError) -> [Event] {
        guard (1...10_000).contains(limit) else { throw .invalidArgument("limit must be 1 to 10000") }
        return try await read { db in
            let rows: [Row]
            if let accountID {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM events WHERE account_id = ? AND account_sequence > ? ORDER BY account_sequence LIMIT ?",
                                        arguments: [accountID, Int64(clamping: sequence), limit])
            } else {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM events WHERE sequence > ? ORDER BY sequence LIMIT ?",
                                        arguments: [Int64(clamping: sequence), limit])
            }
            return try rows.map(Self.event)
        }
    }

    /// An account's notifications, newest first, paged like payments.
    public func notifications(accountID: String, pageSize: Int, pageToken: String?) async throws(BillingError) -> Page<Notification> {
        guard (1...200).contains(pageSize) else { throw .invalidArgument("page size must be 1 to 200") }
        let cursor = try pageToken.map { token throws(BillingError) in try PageToken(token) }
        return try await read { db in
            var sql = "SELECT * FROM notifications WHERE account_id = ?"
            var arguments: [any DatabaseValueConvertible] = [accountID]
            if let cursor {
                sql += " AND (created_at_ms < ? OR (created_at_ms = ? AND id < ?))"
                arguments += [cursor.sortKey, cursor.sortKey, cursor.id]
            }
            let rows = try Row.fetchAll(db, sql: sql + " ORDER BY created_at_ms DESC, id DESC LIMIT ?",
                                        arguments: StatementArguments(arguments + [pageSize + 1]))
            var items = rows.map { row in
                Notification(id: row["id"], accountID: row["account_id"], severity: Notification.Severity(rawValue: row["severity"]) ?? .error,
                             title: row["title"], body: row["body"], paymentID: row["payment_id"], createdAtMs: row["created_at_ms"])
            }
            var next: String?
            if items.count > pageSize {
                items.removeLast()
                next = PageToken(sortKey: items[items.count - 1].createdAtMs, id: items[items.count - 1].id).encoded
            }
            return Page(items: items, nextPageToken: next)
        }
    }
}
