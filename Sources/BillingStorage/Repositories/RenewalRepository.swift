internal import BillingCore
internal import GRDB

/// Rows of `renewable_services`, `renewal_orders` and their `renewal_lines`.
enum RenewalRepository {
    static func fetchService(_ db: Database, _ id: String) throws -> RenewableService? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM renewable_services WHERE id = ?"), arguments: [id]).map(
            service
        )
    }

    static func requireService(_ db: Database, _ id: String, accountID: String) throws -> RenewableService {
        guard let service = try fetchService(db, id), service.accountID == accountID else {
            throw BillingError.notFound("service \(id.prefix(64)) not found")
        }
        return service
    }

    /// The account's services among `ids` (missing ones are simply absent).
    static func services(_ db: Database, ids: [String], accountID: String) throws -> [RenewableService] {
        guard !ids.isEmpty else { return [] }
        let marks = ids.map { _ in "?" }.joined(separator: ", ")
        return try Row.fetchAll(
            db.cachedStatement(sql: "SELECT * FROM renewable_services WHERE account_id = ? AND id IN (\(marks))"),
            arguments: StatementArguments([accountID] + ids)
        ).map(service)
    }

    /// The account's services, soonest expiry first.
    static func services(_ db: Database, accountID: String) throws -> [RenewableService] {
        try Row.fetchAll(
            db.cachedStatement(sql: "SELECT * FROM renewable_services WHERE account_id = ? ORDER BY expires_at_ms, id"),
            arguments: [accountID]
        ).map(service)
    }

    /// Creates or changes a service (its account never changes).
    static func save(_ db: Database, _ service: RenewableService) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO renewable_services (id, account_id, display_name, price_minor, currency, period_days, expires_at_ms, updated_at_ms,
                    auto_days_before, auto_payer_id, auto_next_attempt_at_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, price_minor = excluded.price_minor,
                    period_days = excluded.period_days, expires_at_ms = excluded.expires_at_ms, updated_at_ms = excluded.updated_at_ms,
                    auto_days_before = excluded.auto_days_before, auto_payer_id = excluded.auto_payer_id,
                    auto_next_attempt_at_ms = excluded.auto_next_attempt_at_ms
                WHERE account_id = excluded.account_id
                """
        ).execute(arguments: [
            service.id, service.accountID, service.displayName, service.pricePerPeriod.amountMinorUnits,
            service.pricePerPeriod.currency.code, service.periodDays, service.expiresAtMs, service.updatedAtMs,
            service.autoRenewal?.daysBefore, service.autoRenewal?.payerID, service.autoRenewal?.nextAttemptAtMs,
        ]
        )
        try Rows.expectOneChange(db, "service \(service.id)")
    }

    /// An automatic renewal attempt: when the next one is due.
    static func scheduleAutoRenewal(_ db: Database, _ serviceID: String, nextAttemptAtMs: Int64?) throws {
        try db.cachedStatement(
            sql:
                "UPDATE renewable_services SET auto_next_attempt_at_ms = ? WHERE id = ? AND auto_days_before IS NOT NULL"
        ).execute(arguments: [nextAttemptAtMs, serviceID])
        try Rows.expectOneChange(db, "automatic renewal of service \(serviceID)")
    }

    /// Services with automatic renewal whose attempt is due by `now` and
    /// that have not expired, soonest expiry first.
    static func dueAutoRenewals(_ db: Database, now: Int64, limit: Int) throws -> [String] {
        try String.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT id FROM renewable_services
                    WHERE auto_days_before IS NOT NULL AND expires_at_ms > ?
                        AND expires_at_ms - auto_days_before * 86400000 <= ?
                        AND COALESCE(auto_next_attempt_at_ms, 0) <= ?
                        AND NOT EXISTS (SELECT 1 FROM renewal_lines JOIN renewal_orders ON renewal_orders.id = renewal_lines.order_id
                            WHERE renewal_lines.service_id = renewable_services.id AND renewal_orders.status = 'awaiting_payment')
                    ORDER BY expires_at_ms, id LIMIT ?
                    """
            ),
            arguments: [now, now, now, limit]
        )
    }

    /// Those of `ids` with an automatic renewal order awaiting its payment.
    static func beingAutoRenewed(_ db: Database, ids: [String]) throws -> [String] {
        guard !ids.isEmpty else { return [] }
        let marks = ids.map { _ in "?" }.joined(separator: ", ")
        return try String.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT auto_service_id FROM renewal_orders
                    WHERE status = 'awaiting_payment' AND auto_service_id IN (\(marks))
                    """
            ),
            arguments: StatementArguments(ids)
        )
    }

    /// Whether an order already renews the period of `service` that starts
    /// at its expiry: any order with the service awaiting its payment, or an
    /// automatic one for that period that completed.
    static func period(_ db: Database, _ service: RenewableService) throws -> AutoRenewals.Period {
        let awaiting = try Bool.fetchOne(
            db.cachedStatement(
                sql: """
                    SELECT EXISTS (SELECT 1 FROM renewal_orders JOIN renewal_lines ON renewal_lines.order_id = renewal_orders.id
                        WHERE renewal_lines.service_id = ? AND renewal_orders.status = 'awaiting_payment')
                    """
            ),
            arguments: [service.id]
        )
        if awaiting == true { return .awaitingPayment }
        let renewed = try String.fetchOne(
            db.cachedStatement(
                sql: """
                    SELECT id FROM renewal_orders WHERE auto_service_id = ? AND auto_period_ms = ? AND status = 'completed'
                    """
            ),
            arguments: [service.id, service.expiresAtMs]
        )
        return renewed.map { .renewed(orderID: $0) } ?? .free
    }

    private static func service(_ row: Row) throws -> RenewableService {
        let daysBefore: Int? = row["auto_days_before"]
        return RenewableService(
            id: row["id"],
            accountID: row["account_id"],
            displayName: row["display_name"],
            pricePerPeriod: Money(minorUnits: row["price_minor"], try Rows.currency(row["currency"])),
            periodDays: row["period_days"],
            expiresAtMs: row["expires_at_ms"],
            updatedAtMs: row["updated_at_ms"],
            autoRenewal: daysBefore.map {
                AutoRenewal(
                    daysBefore: $0,
                    payerID: row["auto_payer_id"],
                    nextAttemptAtMs: row["auto_next_attempt_at_ms"]
                )
            }
        )
    }

    // MARK: Orders

    static func requireOrder(_ db: Database, _ id: String) throws -> RenewalOrder {
        guard
            let row = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT * FROM renewal_orders WHERE id = ?"),
                arguments: [id]
            )
        else {
            throw BillingError.notFound("renewal order \(id.prefix(64)) not found")
        }
        let currency = try Rows.currency(row["currency"])
        // A line's new expiry is known once the order completes; 0 before.
        let lines = try Row.fetchAll(
            db.cachedStatement(sql: "SELECT * FROM renewal_lines WHERE order_id = ? ORDER BY rowid"),
            arguments: [id]
        ).map { line in
            RenewalLine(
                serviceID: line["service_id"],
                periods: line["periods"],
                amount: Money(minorUnits: line["amount_minor"], currency),
                newExpiresAtMs: line["new_expires_at_ms"] ?? 0
            )
        }
        return RenewalOrder(
            id: row["id"],
            accountID: row["account_id"],
            lines: lines,
            total: Money(minorUnits: row["total_minor"], currency),
            fromBalance: Money(minorUnits: row["from_balance_minor"], currency),
            status: try Rows.decode(RenewalOrder.Status.self, row, "status", table: "renewal_orders"),
            paymentID: row["payment_id"],
            createdAtMs: row["created_at_ms"],
            completedAtMs: row["completed_at_ms"],
            autoPeriodMs: row["auto_period_ms"]
        )
    }

    static func insertOrder(_ db: Database, _ order: RenewalOrder) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO renewal_orders (id, account_id, total_minor, from_balance_minor, currency, status, payment_id,
                    created_at_ms, completed_at_ms, auto_service_id, auto_period_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            order.id, order.accountID, order.total.amountMinorUnits, order.fromBalance.amountMinorUnits,
            order.total.currency.code, order.status.rawValue,
            order.paymentID, order.createdAtMs, order.completedAtMs,
            order.autoPeriodMs == nil ? nil : order.lines.first?.serviceID, order.autoPeriodMs,
        ]
        )
        for line in order.lines {
            try db.cachedStatement(
                sql:
                    "INSERT INTO renewal_lines (order_id, service_id, periods, amount_minor, new_expires_at_ms) VALUES (?, ?, ?, ?, ?)"
            ).execute(arguments: [order.id, line.serviceID, line.periods, line.amount.amountMinorUnits, expiry(line)]
            )
        }
    }

    /// Status, payment and completion, as a compare-and-set on the status
    /// decided from; the lines' new expiries once known.
    static func updateOrder(_ db: Database, _ order: RenewalOrder, expected: RenewalOrder.Status) throws {
        try db.cachedStatement(
            sql: "UPDATE renewal_orders SET status = ?, payment_id = ?, completed_at_ms = ? WHERE id = ? AND status = ?"
        ).execute(arguments: [order.status.rawValue, order.paymentID, order.completedAtMs, order.id, expected.rawValue]
        )
        try Rows.expectOneChange(db, "renewal order \(order.id)")
        for line in order.lines where line.newExpiresAtMs != 0 {
            try db.cachedStatement(
                sql: "UPDATE renewal_lines SET new_expires_at_ms = ? WHERE order_id = ? AND service_id = ?"
            ).execute(arguments: [line.newExpiresAtMs, order.id, line.serviceID]
            )
        }
    }

    /// 0 (not known yet) is stored as NULL.
    private static func expiry(_ line: RenewalLine) -> Int64? {
        line.newExpiresAtMs == 0 ? nil : line.newExpiresAtMs
    }
}
