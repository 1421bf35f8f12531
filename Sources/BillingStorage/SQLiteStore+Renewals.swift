public import BillingCore
internal import GRDB

extension SQLiteStore {
    /// Registers or updates a service that can be renewed (internal services).
    public func upsertRenewableService(_ service: RenewableService) async throws(BillingError) -> RenewableService {
        try IDs.check(service.id, "service id")
        try Text.check(service.displayName, "display name", max: 200, required: true)
        guard service.pricePerPeriod.amountMinorUnits > 0 else { throw .invalidArgument("price per period must be positive") }
        guard (1...3660).contains(service.periodDays) else { throw .invalidArgument("period must be 1 to 3660 days") }
        try Timestamps.check(service.expiresAtMs, "expiry")
        let now = clock()
        return try await write { db in
            let account = try Self.requireAccount(db, service.accountID)
            guard service.pricePerPeriod.currency == account.currency else {
                throw BillingError.invalidArgument("account \(account.id) pays in \(account.currency), not \(service.pricePerPeriod.currency)")
            }
            if let owner = try String.fetchOne(db, sql: "SELECT account_id FROM renewable_services WHERE id = ?", arguments: [service.id]),
               owner != service.accountID {
                throw BillingError.alreadyExists("service \(service.id) belongs to another account")
            }
            try db.execute(
                sql: """
                    INSERT INTO renewable_services (id, account_id, display_name, price_minor, currency, period_days, expires_at_ms, updated_at_ms)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, price_minor = excluded.price_minor,
                        period_days = excluded.period_days, expires_at_ms = excluded.expires_at_ms, updated_at_ms = excluded.updated_at_ms
                    """,
                arguments: [service.id, service.accountID, service.displayName, service.pricePerPeriod.amountMinorUnits,
                            service.pricePerPeriod.currency.code, service.periodDays, service.expiresAtMs, now]
            )
            return try Self.requireService(db, service.id, accountID: service.accountID)
        }
    }

    /// The account's services, soonest expiry first.
    public func renewableServices(accountID: String) async throws(BillingError) -> [RenewableService] {
        try await read { db in
            _ = try Self.requireAccount(db, accountID)
            return try Row.fetchAll(db, sql: "SELECT * FROM renewable_services WHERE account_id = ? ORDER BY expires_at_ms, id",
                                    arguments: [accountID]).map(Self.service)
        }
    }

    /// Prices a renewal at today's prices; changes nothing.
    public func quoteRenewal(accountID: String, items: [RenewalItem]) async throws(BillingError) -> (lines: [RenewalLine], total: Money) {
        try Self.checkItems(items)
        let now = clock()
        return try await read { db in
            let account = try Self.requireAccount(db, accountID)
            return try Self.quote(db, account: account, items: items, now: now)
        }
    }

    /// Renews services. From the balance the order completes at once (an
    /// atomic debit and the new expiries) or throws `insufficientFunds`;
    /// otherwise a New payment is made and its Paid transition credits, debits
    /// and extends in one transaction. `expectedTotal` guards against a price
    /// change between quote and renewal.
    public func renew(accountID: String, payerID: String?, items: [RenewalItem], option: PaymentOption,
                      expectedTotal: Money?, idempotencyKey: IdempotencyKey?) async throws(BillingError) -> (order: RenewalOrder, payment: Payment?) {
        try Self.checkItems(items)
        if case .paymentSystem(_, _, let url) = option { try WebURL.check(url, "return URL") }
        let fingerprint = "renew|\(accountID)|\(payerID ?? "")|\(items.map { "\($0.serviceID)x\($0.periods)" }.joined(separator: ","))|\(option)|\(expectedTotal.map(\.description) ?? "")"
        let now = clock()
        let lifetime = configuration.idempotencyKeyLifetimeMs
        let limits = configuration.limits
        return try await write { db in
            if let idempotencyKey, let existing = try Self.replay(db, accountID: accountID, operation: "renew", key: idempotencyKey,
                                                                  fingerprint: fingerprint, now: now) {
                let order = try Self.requireRenewalOrder(db, existing)
                return (order, try order.paymentID.map { try Self.requirePayment(db, $0) })
            }
            let account = try Self.requireAccount(db, accountID)
            let (lines, total) = try Self.quote(db, account: account, items: items, now: now)
            if let expectedTotal, expectedTotal != total {
                throw BillingError.failedPrecondition("the renewal now costs \(total), not \(expectedTotal); quote again")
            }
            let orderID = IDs.make("ro")
            try db.execute(
                sql: "INSERT INTO renewal_orders (id, account_id, total_minor, currency, status, created_at_ms) VALUES (?, ?, ?, ?, 'awaiting_payment', ?)",
                arguments: [orderID, account.id, total.amountMinorUnits, total.currency.code, now]
            )
            for line in lines {
                try db.execute(sql: "INSERT INTO renewal_lines (order_id, service_id, periods, amount_minor) VALUES (?, ?, ?, ?)",
                               arguments: [orderID, line.serviceID, line.periods, line.amount.amountMinorUnits])
            }
            var payment: Payment?
            if case .balance = option {
                try Self.completeRenewalOrder(db, orderID: orderID, account: account, paymentID: nil, now: now)
            } else {
                guard let payerID else { throw BillingError.invalidArgument("payer id is required unless paying from the balance") }
                let payer = try Self.requirePayer(db, payerID)
                guard payer.accountID == account.id else { throw BillingError.notFound("payer \(payerID.prefix(64)) not found") }
                let created = try Self.insertPayment(db, account: account, payer: payer, purpose: .renewal, amount: total,
                                                     option: option, limits: limits, now: now, renewalOrderID: orderID)
                try db.execute(sql: "UPDATE renewal_orders SET payment_id = ? WHERE id = ?", arguments: [created.id, orderID])
                payment = created
            }
            if let idempotencyKey {
                try Self.remember(db, accountID: account.id, operation: "renew", key: idempotencyKey, fingerprint: fingerprint,
                                  resultID: orderID, now: now, lifetime: lifetime)
            }
            return (try Self.requireRenewalOrder(db, orderID), payment)
        }
    }

    public func renewalOrder(_ id: String) async throws(BillingError) -> RenewalOrder {
        try await read { db in try Self.requireRenewalOrder(db, id) }
    }

    // MARK: Inside transactions

    static func checkItems(_ items: [RenewalItem]) throws(BillingError) {
        guard (1...100).contains(items.count) else { throw .invalidArgument("a renewal has 1 to 100 services") }
        guard Set(items.map(\.serviceID)).count == items.count else { throw .invalidArgument("each service may appear once") }
        for item in items {
            try IDs.check(item.serviceID, "service id")
            guard (1...120).contains(item.periods) else { throw .invalidArgument("periods must be 1 to 120") }
        }
    }

    static func quote(_ db: Database, account: Account, items: [RenewalItem], now: Int64) throws -> ([RenewalLine], Money) {
        var total = Money.zero(account.currency)
        var lines: [RenewalLine] = []
        for item in items {
            let service = try requireService(db, item.serviceID, accountID: account.id)
            let amount = try service.pricePerPeriod.multiplied(by: Int64(item.periods))
            total = try total.adding(amount)
            lines.append(RenewalLine(serviceID: service.id, periods: item.periods, amount: amount,
                                     newExpiresAtMs: try newExpiry(service, periods: item.periods, now: now)))
        }
        return (lines, total)
    }

    /// A renewal extends from the current expiry, or from now if it has passed.
    /// Checked: a stored expiry or period out of range is an error for this
    /// call, not a trap.
    static func newExpiry(_ service: RenewableService, periods: Int, now: Int64) throws(BillingError) -> Int64 {
        let (days, overflow) = Int64(periods).multipliedReportingOverflow(by: Int64(service.periodDays))
        guard !overflow else { throw .failedPrecondition("renewing service \(service.id) would end after the year 9999") }
        return try Timestamps.adding(days: days, to: max(service.expiresAtMs, now), "renewing service \(service.id)")
    }

    /// The debit and the new expiries of an order, once.
    static func completeRenewalOrder(_ db: Database, orderID: String, account: Account, paymentID: String?, now: Int64) throws {
        let order = try requireRenewalOrder(db, orderID)
        guard order.status == .awaitingPayment else { return }
        try debit(db, account: account, amount: order.total, entryKey: "debit:\(order.id)", reference: "renewal order \(order.id)", now: now)
        for line in order.lines {
            let service = try requireService(db, line.serviceID, accountID: account.id)
            let expiry = try newExpiry(service, periods: line.periods, now: now)
            try db.execute(sql: "UPDATE renewable_services SET expires_at_ms = ?, updated_at_ms = ? WHERE id = ?",
                           arguments: [expiry, now, service.id])
            try db.execute(sql: "UPDATE renewal_lines SET new_expires_at_ms = ? WHERE order_id = ? AND service_id = ?",
                           arguments: [expiry, order.id, service.id])
        }
        try db.execute(sql: "UPDATE renewal_orders SET status = 'completed', completed_at_ms = ? WHERE id = ?", arguments: [now, order.id])
    }

    static func requireService(_ db: Database, _ id: String, accountID: String) throws -> RenewableService {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM renewable_services WHERE id = ? AND account_id = ?", arguments: [id, accountID]) else {
            throw BillingError.notFound("service \(id.prefix(64)) not found")
        }
        return try service(row)
    }

    static func service(_ row: Row) throws -> RenewableService {
        RenewableService(id: row["id"], accountID: row["account_id"], displayName: row["display_name"],
                         pricePerPeriod: Money(minorUnits: row["price_minor"], try currency(row["currency"])),
                         periodDays: row["period_days"], expiresAtMs: row["expires_at_ms"], updatedAtMs: row["updated_at_ms"])
    }

    static func requireRenewalOrder(_ db: Database, _ id: String) throws -> RenewalOrder {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM renewal_orders WHERE id = ?", arguments: [id]) else {
            throw BillingError.notFound("renewal order \(id.prefix(64)) not found")
        }
        let currency = try currency(row["currency"])
        guard let status = RenewalOrder.Status(rawValue: row["status"]) else {
            throw BillingError.storage("renewal_orders.status holds an unknown value", retryable: false)
        }
        // A line's new expiry is known once the order completes; 0 before.
        let lines = try Row.fetchAll(db, sql: "SELECT * FROM renewal_lines WHERE order_id = ? ORDER BY rowid", arguments: [id]).map { line in
            RenewalLine(serviceID: line["service_id"], periods: line["periods"], amount: Money(minorUnits: line["amount_minor"], currency),
                        newExpiresAtMs: line["new_expires_at_ms"] ?? 0)
        }
        return RenewalOrder(id: row["id"], accountID: row["account_id"], lines: lines, total: Money(minorUnits: row["total_minor"], currency),
                            status: status, paymentID: row["payment_id"], createdAtMs: row["created_at_ms"], completedAtMs: row["completed_at_ms"])
    }
}
