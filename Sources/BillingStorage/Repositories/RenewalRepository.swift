internal import BillingCore

/// Rows of `renewable_services`, `renewal_orders` and their `renewal_lines`.
enum RenewalRepository {
    static func fetchService(_ db: any SQLSession, _ id: String) throws -> RenewableService? {
        try db.row("SELECT * FROM renewable_services WHERE id = ?", [id]).map(
            service
        )
    }

    static func requireService(_ db: any SQLSession, _ id: String, accountID: String) throws -> RenewableService {
        guard let service = try fetchService(db, id), service.accountID == accountID else {
            throw BillingError.notFound("service \(id.prefix(64)) not found")
        }
        return service
    }

    /// The account's services among `ids` (missing ones are simply absent).
    static func services(_ db: any SQLSession, ids: [String], accountID: String) throws -> [RenewableService] {
        guard !ids.isEmpty else { return [] }
        let marks = ids.map { _ in "?" }.joined(separator: ", ")
        return try db.rows(
            "SELECT * FROM renewable_services WHERE account_id = ? AND id IN (\(marks))",
            [accountID] + ids
        ).map(service)
    }

    /// The account's services, soonest expiry first.
    static func services(_ db: any SQLSession, accountID: String) throws -> [RenewableService] {
        try db.rows("SELECT * FROM renewable_services WHERE account_id = ? ORDER BY expires_at_ms, id", [accountID])
            .map(service)
    }

    /// Creates or changes a service (its account never changes).
    static func save(_ db: any SQLSession, _ service: RenewableService) throws {
        try db.execute(
            """
            INSERT INTO renewable_services (id, account_id, display_name, price_minor, currency, period_days, expires_at_ms, updated_at_ms,
                auto_days_before, auto_payer_id, auto_next_attempt_at_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, price_minor = excluded.price_minor,
                period_days = excluded.period_days, expires_at_ms = excluded.expires_at_ms, updated_at_ms = excluded.updated_at_ms,
                auto_days_before = excluded.auto_days_before, auto_payer_id = excluded.auto_payer_id,
                auto_next_attempt_at_ms = excluded.auto_next_attempt_at_ms
            WHERE renewable_services.account_id = excluded.account_id
            """,
            [
                service.id, service.accountID, service.displayName, service.pricePerPeriod.amountMinorUnits,
                service.pricePerPeriod.currency.code, service.periodDays, service.expiresAtMs, service.updatedAtMs,
                service.autoRenewal?.daysBefore, service.autoRenewal?.payerID, service.autoRenewal?.nextAttemptAtMs,
            ]
        )
        try Rows.expectOneChange(db, "service \(service.id)")
    }

    /// An automatic renewal attempt: when the next one is due.
    static func scheduleAutoRenewal(_ db: any SQLSession, _ serviceID: String, nextAttemptAtMs: Int64?) throws {
        try db.execute(
            "UPDATE renewable_services SET auto_next_attempt_at_ms = ? WHERE id = ? AND auto_days_before IS NOT NULL",
            [nextAttemptAtMs, serviceID]
        )
        try Rows.expectOneChange(db, "automatic renewal of service \(serviceID)")
    }

    /// Services with automatic renewal whose attempt is due by `now` and
    /// that have not expired, soonest expiry first.
    static func dueAutoRenewals(_ db: any SQLSession, now: Int64, limit: Int) throws -> [String] {
        try db.values(
            String.self,
            """
            SELECT id FROM renewable_services
            WHERE auto_days_before IS NOT NULL AND expires_at_ms > ?
                AND expires_at_ms - auto_days_before * 86400000 <= ?
                AND COALESCE(auto_next_attempt_at_ms, 0) <= ?
                AND NOT EXISTS (SELECT 1 FROM renewal_lines JOIN renewal_orders ON renewal_orders.id = renewal_lines.order_id
                    WHERE renewal_lines.service_id = renewable_services.id AND renewal_orders.status = 'awaiting_payment')
            ORDER BY expires_at_ms, id LIMIT ?
            """,
            [now, now, now, limit]
        )
    }

    /// Those of `ids` with an automatic renewal order awaiting its payment.
    static func beingAutoRenewed(_ db: any SQLSession, ids: [String]) throws -> [String] {
        guard !ids.isEmpty else { return [] }
        let marks = ids.map { _ in "?" }.joined(separator: ", ")
        return try db.values(
            String.self,
            """
            SELECT auto_service_id FROM renewal_orders
            WHERE status = 'awaiting_payment' AND auto_service_id IN (\(marks))
            """,
            ids
        )
    }

    /// Whether an order already renews the period of `service` that starts
    /// at its expiry: any order with the service awaiting its payment, or an
    /// automatic one for that period that completed.
    static func period(_ db: any SQLSession, _ service: RenewableService) throws -> AutoRenewals.Period {
        let awaiting = try db.value(
            Bool.self,
            """
            SELECT EXISTS (SELECT 1 FROM renewal_orders JOIN renewal_lines ON renewal_lines.order_id = renewal_orders.id
                WHERE renewal_lines.service_id = ? AND renewal_orders.status = 'awaiting_payment')
            """,
            [service.id]
        )
        if awaiting == true { return .awaitingPayment }
        let renewed = try db.value(
            String.self,
            """
            SELECT id FROM renewal_orders WHERE auto_service_id = ? AND auto_period_ms = ? AND status = 'completed'
            """,
            [service.id, service.expiresAtMs]
        )
        return renewed.map { .renewed(orderID: $0) } ?? .free
    }

    private static func service(_ row: SQLRow) throws -> RenewableService {
        let daysBefore: Int? = try row.get("auto_days_before")
        return RenewableService(
            id: try row.get("id"),
            accountID: try row.get("account_id"),
            displayName: try row.get("display_name"),
            pricePerPeriod: Money(minorUnits: try row.get("price_minor"), try Rows.currency(try row.get("currency"))),
            periodDays: try row.get("period_days"),
            expiresAtMs: try row.get("expires_at_ms"),
            updatedAtMs: try row.get("updated_at_ms"),
            autoRenewal: try daysBefore.map {
                AutoRenewal(
                    daysBefore: $0,
                    payerID: try row.get("auto_payer_id"),
                    nextAttemptAtMs: try row.get("auto_next_attempt_at_ms")
                )
            }
        )
    }

    // MARK: Orders

    static func requireOrder(_ db: any SQLSession, _ id: String) throws -> RenewalOrder {
        guard
            let row = try db.row("SELECT * FROM renewal_orders WHERE id = ?", [id])
        else {
            throw BillingError.notFound("renewal order \(id.prefix(64)) not found")
        }
        let currency = try Rows.currency(try row.get("currency"))
        // A line's new expiry is known once the order completes; 0 before.
        let lines = try db.rows("SELECT * FROM renewal_lines WHERE order_id = ? ORDER BY rowid", [id]).map { line in
            RenewalLine(
                serviceID: try line.get("service_id"),
                periods: try line.get("periods"),
                amount: Money(minorUnits: try line.get("amount_minor"), currency),
                newExpiresAtMs: try line.get("new_expires_at_ms") ?? 0
            )
        }
        return RenewalOrder(
            id: try row.get("id"),
            accountID: try row.get("account_id"),
            lines: lines,
            total: Money(minorUnits: try row.get("total_minor"), currency),
            fromBalance: Money(minorUnits: try row.get("from_balance_minor"), currency),
            status: try Rows.decode(RenewalOrder.Status.self, row, "status", table: "renewal_orders"),
            paymentID: try row.get("payment_id"),
            createdAtMs: try row.get("created_at_ms"),
            completedAtMs: try row.get("completed_at_ms"),
            autoPeriodMs: try row.get("auto_period_ms")
        )
    }

    static func insertOrder(_ db: any SQLSession, _ order: RenewalOrder) throws {
        try db.execute(
            """
            INSERT INTO renewal_orders (id, account_id, total_minor, from_balance_minor, currency, status, payment_id,
                created_at_ms, completed_at_ms, auto_service_id, auto_period_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                order.id, order.accountID, order.total.amountMinorUnits, order.fromBalance.amountMinorUnits,
                order.total.currency.code, order.status.rawValue,
                order.paymentID, order.createdAtMs, order.completedAtMs,
                order.autoPeriodMs == nil ? nil : order.lines.first?.serviceID, order.autoPeriodMs,
            ]
        )
        for line in order.lines {
            try db.execute(
                "INSERT INTO renewal_lines (order_id, service_id, periods, amount_minor, new_expires_at_ms) VALUES (?, ?, ?, ?, ?)",
                [order.id, line.serviceID, line.periods, line.amount.amountMinorUnits, expiry(line)]
            )
        }
    }

    /// Status, payment and completion, as a compare-and-set on the status
    /// decided from; the lines' new expiries once known.
    static func updateOrder(_ db: any SQLSession, _ order: RenewalOrder, expected: RenewalOrder.Status) throws {
        try db.execute(
            "UPDATE renewal_orders SET status = ?, payment_id = ?, completed_at_ms = ? WHERE id = ? AND status = ?",
            [order.status.rawValue, order.paymentID, order.completedAtMs, order.id, expected.rawValue]
        )
        try Rows.expectOneChange(db, "renewal order \(order.id)")
        for line in order.lines where line.newExpiresAtMs != 0 {
            try db.execute(
                "UPDATE renewal_lines SET new_expires_at_ms = ? WHERE order_id = ? AND service_id = ?",
                [line.newExpiresAtMs, order.id, line.serviceID]
            )
        }
    }

    /// 0 (not known yet) is stored as NULL.
    private static func expiry(_ line: RenewalLine) -> Int64? {
        line.newExpiresAtMs == 0 ? nil : line.newExpiresAtMs
    }
}
