public import BillingCore
internal import GRDB

extension SQLiteStore {
    /// Registers an ordered migration's server price; the same external id
    /// again returns the order (ALREADY_EXISTS if its fields differ).
    public func createMigrationOrder(accountID: String, externalID: String, description: String, serverPrice: Money) async throws(BillingError) -> MigrationOrder {
        try IDs.check(externalID, "external id")
        try Text.check(description, "description", max: 500)
        guard serverPrice.amountMinorUnits > 0 else { throw .invalidArgument("server price must be positive") }
        let now = clock()
        return try await write { db in
            let account = try Self.requireAccount(db, accountID)
            guard serverPrice.currency == account.currency else {
                throw BillingError.invalidArgument("account \(accountID) pays in \(account.currency), not \(serverPrice.currency)")
            }
            if let row = try Row.fetchOne(db, sql: "SELECT * FROM migration_orders WHERE account_id = ? AND external_id = ?",
                                          arguments: [accountID, externalID]) {
                let existing = try Self.migrationOrder(row)
                guard existing.serverPrice == serverPrice, existing.description == description else {
                    throw BillingError.alreadyExists("migration order \(externalID) exists with other fields")
                }
                return existing
            }
            let id = IDs.make("mo")
            try db.execute(
                sql: """
                    INSERT INTO migration_orders (id, account_id, external_id, description, price_minor, currency, status, created_at_ms)
                    VALUES (?, ?, ?, ?, ?, ?, 'awaiting_payment', ?)
                    """,
                arguments: [id, accountID, externalID, description, serverPrice.amountMinorUnits, serverPrice.currency.code, now]
            )
            return try Self.requireMigrationOrder(db, id)
        }
    }

    public func migrationOrder(_ id: String) async throws(BillingError) -> MigrationOrder {
        try await read { db in try Self.requireMigrationOrder(db, id) }
    }

    /// Pays an order once. From the balance: an atomic debit, or
    /// `insufficientFunds`. Otherwise: a New payment whose Paid transition
    /// credits, then debits, in one transaction. An order that is Paid, or
    /// has a New payment, is refused.
    public func payMigrationOrder(_ orderID: String, payerID: String?, option: PaymentOption,
                                  idempotencyKey: IdempotencyKey? = nil) async throws(BillingError) -> (order: MigrationOrder, payment: Payment?) {
        if case .paymentSystem(_, _, let url) = option { try WebURL.check(url, "return URL") }
        let now = clock()
        let fingerprint = "pay_migration|\(orderID)|\(payerID ?? "")|\(option)"
        let lifetime = configuration.idempotencyKeyLifetimeMs
        let limits = configuration.limits
        return try await write { db in
            let order = try Self.requireMigrationOrder(db, orderID)
            if let idempotencyKey, let first = try Self.replay(db, accountID: order.accountID, operation: "pay_migration", key: idempotencyKey,
                                                              fingerprint: fingerprint, now: now) {
                // The first call's result: the order and the payment it made ("" when paid from the balance).
                return (order, first.isEmpty ? nil : try Self.requirePayment(db, first))
            }
            let result = try Self.pay(db, order: order, payerID: payerID, option: option, limits: limits, now: now)
            if let idempotencyKey {
                try Self.remember(db, accountID: order.accountID, operation: "pay_migration", key: idempotencyKey,
                                  fingerprint: fingerprint, resultID: result.payment?.id ?? "", now: now, lifetime: lifetime)
            }
            return result
        }
    }

    private static func pay(_ db: Database, order: MigrationOrder, payerID: String?, option: PaymentOption, limits: PaymentLimits,
                            now: Int64) throws -> (order: MigrationOrder, payment: Payment?) {
        guard order.status == .awaitingPayment else {
            throw BillingError.failedPrecondition("migration order \(order.id) is \(order.status.rawValue)")
        }
        let account = try requireAccount(db, order.accountID)
        if case .balance = option {
            try debit(db, account: account, amount: order.serverPrice, entryKey: "debit:\(order.id)",
                      reference: "migration order \(order.id)", now: now)
            try db.execute(sql: "UPDATE migration_orders SET status = 'paid', paid_at_ms = ? WHERE id = ?", arguments: [now, order.id])
            return (try requireMigrationOrder(db, order.id), nil)
        }
        guard let payerID else { throw BillingError.invalidArgument("payer id is required unless paying from the balance") }
        let payer = try requirePayer(db, payerID)
        guard payer.accountID == account.id else { throw BillingError.notFound("payer \(payerID.prefix(64)) not found") }
        let payment = try insertPayment(db, account: account, payer: payer, purpose: .migration, amount: order.serverPrice,
                                        option: option, limits: limits, now: now, migrationOrderID: order.id)
        try db.execute(sql: "UPDATE migration_orders SET status = 'payment_pending', payment_id = ? WHERE id = ?",
                       arguments: [payment.id, order.id])
        return (try requireMigrationOrder(db, order.id), payment)
    }

    /// The debit half of a paid-through-a-payment order, inside its transition.
    static func completeMigrationOrder(_ db: Database, orderID: String, account: Account, paymentID: String, now: Int64) throws {
        let order = try requireMigrationOrder(db, orderID)
        guard order.status == .paymentPending, order.paymentID == paymentID else { return }
        try debit(db, account: account, amount: order.serverPrice, entryKey: "debit:\(order.id)",
                  reference: "migration order \(order.id)", now: now)
        try db.execute(sql: "UPDATE migration_orders SET status = 'paid', paid_at_ms = ? WHERE id = ?", arguments: [now, order.id])
    }

    /// An atomic debit: the balance is read and written in the same write
    /// transaction, so two debits cannot both spend the same funds.
    static func debit(_ db: Database, account: Account, amount: Money, entryKey: String, reference: String, now: Int64) throws {
        let balance = try Int64.fetchOne(db, sql: "SELECT balance_minor FROM accounts WHERE id = ?", arguments: [account.id]) ?? 0
        guard balance >= amount.amountMinorUnits else {
            throw BillingError.insufficientFunds(balance: Money(minorUnits: balance, account.currency), required: amount)
        }
        try appendLedger(db, account: account, deltaMinor: -amount.amountMinorUnits, entryKey: entryKey, paymentID: nil,
                         reference: reference, atMs: now)
    }

    static func requireMigrationOrder(_ db: Database, _ id: String) throws -> MigrationOrder {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM migration_orders WHERE id = ?", arguments: [id]) else {
            throw BillingError.notFound("migration order \(id.prefix(64)) not found")
        }
        return try migrationOrder(row)
    }

    static func migrationOrder(_ row: Row) throws -> MigrationOrder {
        guard let status = MigrationOrder.Status(rawValue: row["status"]) else {
            throw BillingError.storage("migration_orders.status holds an unknown value", retryable: false)
        }
        return MigrationOrder(
            id: row["id"], accountID: row["account_id"], externalID: row["external_id"], description: row["description"],
            serverPrice: Money(minorUnits: row["price_minor"], try currency(row["currency"])), status: status,
            paymentID: row["payment_id"], createdAtMs: row["created_at_ms"], paidAtMs: row["paid_at_ms"]
        )
    }
}
