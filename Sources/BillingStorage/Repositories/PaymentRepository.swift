package import BillingCore

/// Rows of `payments`: the record, its end (a compare-and-set on New), its
/// history pages, and the poller's schedule and lease.
package enum PaymentRepository {
    static func require(_ db: any SQLSession, _ id: String) throws -> Payment {
        guard
            let row = try db.row("SELECT * FROM payments WHERE id = ?", [id])
        else {
            throw BillingError.notFound("payment \(id.prefix(64)) not found")
        }
        return try payment(row)
    }

    package static func payment(_ row: SQLRow) throws -> Payment {
        let system: String? = try row.get("system")
        return Payment(
            id: try row.get("id"),
            accountID: try row.get("account_id"),
            payerID: try row.get("payer_id"),
            purpose: try Rows.decode(PaymentPurpose.self, row, "purpose", table: "payments"),
            amount: Money(minorUnits: try row.get("amount_minor"), try Rows.currency(try row.get("currency"))),
            status: try Rows.decode(PaymentStatus.self, row, "status", table: "payments"),
            optionKind: try Rows.decode(PaymentOptionKind.self, row, "option_kind", table: "payments"),
            system: system.flatMap(PaymentSystem.init(rawValue:)),
            paymentMethodID: try row.get("payment_method_id"),
            savedPaymentMethodID: try row.get("saved_payment_method_id"),
            providerReference: try row.get("provider_reference"),
            redirectURL: try row.get("redirect_url"),
            returnURL: try row.get("return_url"),
            invoiceNumber: try row.get("invoice_number"),
            failureReason: try row.get("failure_reason"),
            renewalOrderID: try row.get("renewal_order_id"),
            migrationOrderID: try row.get("migration_order_id"),
            createdAtMs: try row.get("created_at_ms"),
            updatedAtMs: try row.get("updated_at_ms"),
            finishedAtMs: try row.get("finished_at_ms"),
            nextCheckAtMs: try row.get("next_check_at_ms"),
            checkAttempts: try row.get("check_attempts")
        )
    }

    /// A payment and everything its end touches, each read once.
    static func context(_ db: any SQLSession, _ id: String) throws -> PaymentContext {
        let payment = try require(db, id)
        let account = try AccountRepository.require(db, payment.accountID)
        var context = PaymentContext(
            payment: payment,
            account: account,
            funds: try AccountRepository.funds(db, account)
        )
        context.savedMethod = try payment.savedPaymentMethodID.map { try MethodRepository.require(db, $0) }
        context.chargedMethod = try payment.paymentMethodID.map { try MethodRepository.require(db, $0) }
        if context.savedMethod != nil {
            context.payerHasDefaultMethod = try MethodRepository.defaultMethod(db, payerID: payment.payerID) != nil
        }
        if let orderID = payment.renewalOrderID {
            let order = try RenewalRepository.requireOrder(db, orderID)
            context.renewalOrder = order
            context.renewedServices = try RenewalRepository.services(
                db,
                ids: order.lines.map(\.serviceID),
                accountID: account.id
            )
        }
        context.migrationOrder = try payment.migrationOrderID.map { try MigrationRepository.require(db, $0) }
        return context
    }

    /// A bank reference no payment has yet: random, retried on the (rare)
    /// collision; the unique index is the guarantee.
    /// The id of an invoice payment named by its id or its invoice reference
    /// that has no invoice document (made before documents were issued).
    static func legacyInvoice(_ db: any SQLSession, _ numberOrID: String) throws -> Payment? {
        try db.row(
            """
            SELECT * FROM payments WHERE option_kind = 'invoice' AND (id = ? OR invoice_number = ?)
                AND NOT EXISTS (SELECT 1 FROM invoices WHERE invoices.payment_id = payments.id)
            """,
            [numberOrID, numberOrID]
        ).map(payment)
    }

    static func insert(_ db: any SQLSession, _ payment: Payment) throws {
        try db.execute(
            """
            INSERT INTO payments (id, account_id, payer_id, purpose, amount_minor, currency, status, option_kind, system,
                payment_method_id, saved_payment_method_id, provider_reference, redirect_url, return_url, invoice_number,
                failure_reason, migration_order_id, renewal_order_id, created_at_ms, updated_at_ms, next_check_at_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                payment.id, payment.accountID, payment.payerID, payment.purpose.rawValue,
                payment.amount.amountMinorUnits,
                payment.amount.currency.code, payment.status.rawValue, payment.optionKind.rawValue,
                payment.system?.rawValue,
                payment.paymentMethodID, payment.savedPaymentMethodID, payment.providerReference, payment.redirectURL,
                payment.returnURL, payment.invoiceNumber, payment.failureReason, payment.migrationOrderID,
                payment.renewalOrderID, payment.createdAtMs, payment.updatedAtMs, payment.nextCheckAtMs,
            ]
        )
    }

    static func attach(
        _ db: any SQLSession,
        paymentID: String,
        reference: String,
        redirectURL: String,
        atMs: Int64
    ) throws {
        try db.execute(
            "UPDATE payments SET provider_reference = ?, redirect_url = ?, updated_at_ms = ? WHERE id = ? AND status = 'new'",
            [reference, redirectURL, atMs, paymentID]
        )
        try Rows.expectOneChange(db, "payment \(paymentID)")
    }

    /// New → final, a compare-and-set on New; the schedule and lease end.
    static func finish(_ db: any SQLSession, _ payment: Payment) throws {
        try db.execute(
            """
            UPDATE payments SET status = ?, failure_reason = ?, finished_at_ms = ?, updated_at_ms = ?,
                next_check_at_ms = NULL, lease_owner = NULL, lease_until_ms = NULL
            WHERE id = ? AND status = 'new'
            """,
            [
                payment.status.rawValue, payment.failureReason, payment.finishedAtMs, payment.updatedAtMs, payment.id,
            ]
        )
        try Rows.expectOneChange(db, "payment \(payment.id)")
    }

    /// A Paid payment of a payment system by that system's reference.
    static func paidByReference(_ db: any SQLSession, reference: String, system: PaymentSystem) throws -> Payment? {
        try db.row(
            "SELECT * FROM payments WHERE provider_reference = ? AND system = ? AND status = 'paid'",
            [reference, system.rawValue]
        ).map(payment)
    }

    /// Payment history, newest first, with a cursor that neither skips nor
    /// repeats rows while new payments arrive (keyset paging on
    /// created_at_ms, id; new payments sort before the cursor).
    static func page(_ db: any SQLSession, _ query: PaymentQuery, after cursor: PageToken?) throws -> Page<Payment> {
        var conditions = ["account_id = ?"]
        var arguments: [any SQLArgument] = [query.accountID]
        if !query.statuses.isEmpty {
            conditions.append("status IN (\(query.statuses.map { _ in "?" }.joined(separator: ", ")))")
            arguments += query.statuses.map(\.rawValue).sorted()
        }
        if !query.purposes.isEmpty {
            conditions.append("purpose IN (\(query.purposes.map { _ in "?" }.joined(separator: ", ")))")
            arguments += query.purposes.map(\.rawValue).sorted()
        }
        if let payer = query.payerID {
            conditions.append("payer_id = ?")
            arguments.append(payer)
        }
        if let from = query.createdFromMs {
            conditions.append("created_at_ms >= ?")
            arguments.append(from)
        }
        if let to = query.createdToMs {
            conditions.append("created_at_ms < ?")
            arguments.append(to)
        }
        if let cursor {
            conditions.append("(created_at_ms < ? OR (created_at_ms = ? AND id < ?))")
            arguments += [cursor.sortKey, cursor.sortKey, cursor.id]
        }
        let rows = try db.rows(
            "SELECT * FROM payments WHERE \(conditions.joined(separator: " AND ")) ORDER BY created_at_ms DESC, id DESC LIMIT ?",
            arguments + [query.pageSize + 1]
        )
        var payments = try rows.map(payment)
        var next: String?
        if payments.count > query.pageSize {
            payments.removeLast()
            next =
                PageToken(sortKey: payments[payments.count - 1].createdAtMs, id: payments[payments.count - 1].id)
                .encoded
        }
        return Page(items: payments, nextPageToken: next)
    }

    // MARK: The poller's schedule

    /// Ids of New payments due by `now` and not leased, soonest first.
    static func due(
        _ db: any SQLSession,
        now: Int64,
        limit: Int,
        excluding systems: Set<PaymentSystem>
    ) throws -> [String] {
        let due = dueCondition(now: now, excluding: systems)
        return try db.values(
            String.self,
            "SELECT id FROM payments WHERE \(due.sql) ORDER BY next_check_at_ms, id LIMIT ?",
            due.arguments + [limit]
        )
    }

    /// What makes a payment due for a claim at `now`: New, its check due,
    /// no live lease, not of an excluded system. One placeholder per
    /// system, unused ones bound to '' (no system's name): one statement
    /// text whatever is excluded.
    package static func dueCondition(
        now: Int64,
        excluding systems: Set<PaymentSystem>
    ) -> (sql: String, arguments: [any SQLArgument]) {
        let excluded = PaymentSystem.allCases.map { systems.contains($0) ? $0.rawValue : "" }
        let placeholders = excluded.map { _ in "?" }.joined(separator: ", ")
        return (
            """
            status = 'new' AND next_check_at_ms IS NOT NULL AND next_check_at_ms <= ?
              AND (lease_until_ms IS NULL OR lease_until_ms <= ?)
              AND (system IS NULL OR system NOT IN (\(placeholders)))
            """,
            [now, now] + excluded.map { $0 as any SQLArgument }
        )
    }

    /// Leases a payment to `owner` if it is still New and due and no one
    /// holds a live lease (another poller may have claimed and checked it
    /// since it was found due); true when this call took it.
    static func lease(_ db: any SQLSession, _ id: String, owner: String, until: Int64, now: Int64) throws -> Bool {
        try db.execute(
            """
            UPDATE payments SET lease_owner = ?, lease_until_ms = ?
            WHERE id = ? AND status = 'new' AND next_check_at_ms IS NOT NULL AND next_check_at_ms <= ?
              AND (lease_until_ms IS NULL OR lease_until_ms <= ?)
            """,
            [owner, until, id, now, now]
        ) == 1
    }

    /// Extends `owner`'s live lease of a New payment; true when it was still `owner`'s.
    package static func renew(_ db: any SQLSession, _ id: String, owner: String, until: Int64) throws -> Bool {
        try db.execute(
            "UPDATE payments SET lease_until_ms = ? WHERE id = ? AND lease_owner = ? AND status = 'new'",
            [until, id, owner]
        ) == 1
    }

    /// Gives back `owner`'s lease of a payment it did not check.
    static func release(_ db: any SQLSession, _ id: String, owner: String) throws {
        try db.execute(
            "UPDATE payments SET lease_owner = NULL, lease_until_ms = NULL WHERE id = ? AND lease_owner = ?",
            [id, owner]
        )
    }

    /// A check that left the payment New: counted, the next one set, the
    /// lease released. A payment that left New meanwhile is left alone.
    static func recordCheck(_ db: any SQLSession, _ id: String, owner: String, nextCheckAtMs: Int64?, now: Int64) throws
    {
        try db.execute(
            """
            UPDATE payments SET check_attempts = check_attempts + 1, next_check_at_ms = ?, updated_at_ms = ?,
                lease_owner = NULL, lease_until_ms = NULL
            WHERE id = ? AND status = 'new' AND (lease_owner IS NULL OR lease_owner = ?)
            """,
            [nextCheckAtMs, now, id, owner]
        )
    }

    /// When the next New payment is due (after its lease, if leased).
    /// How many New payments are due for a check now, and since when the
    /// oldest of them is.
    static func backlog(_ db: any SQLSession, now: Int64) throws -> (due: Int, oldestDueMs: Int64?) {
        let row = try db.row(
            """
            SELECT COUNT(*) AS due, MIN(next_check_at_ms) AS oldest FROM payments
            WHERE status = 'new' AND next_check_at_ms IS NOT NULL AND next_check_at_ms <= ?
            """,
            [now]
        )
        return (try row?.get("due") ?? 0, try row?.get("oldest"))
    }

    static func nextDue(_ db: any SQLSession) throws -> Int64? {
        // In next-check order through the `payments_due` index: a payment is
        // due at its next check or when its lease ends, whichever is later,
        // so once a next check is past the best found, none after can beat
        // it. Only payments leased now are read past the first: O(claims in
        // flight), not O(New payments), for a poller woken by every commit.
        // The first `window` rows settle it unless all of them are leased
        // past the next; then one pass over all decides.
        let window = 512
        let rows = try db.rows(
            """
            SELECT next_check_at_ms, lease_until_ms FROM payments
            WHERE status = 'new' AND next_check_at_ms IS NOT NULL
            ORDER BY next_check_at_ms LIMIT ?
            """,
            [window]
        )
        var best: Int64?
        for row in rows {
            let next: Int64 = try row.get(at: 0)
            if let best, next >= best { return best }
            let due = max(next, try row.get(at: 1) as Int64? ?? next)
            best = min(best ?? due, due)
        }
        guard rows.count == window else { return best }
        return try db.value(
            Int64.self,
            """
            SELECT MIN(CASE WHEN lease_until_ms > next_check_at_ms THEN lease_until_ms ELSE next_check_at_ms END)
            FROM payments WHERE status = 'new' AND next_check_at_ms IS NOT NULL
            """
        )
    }
}
