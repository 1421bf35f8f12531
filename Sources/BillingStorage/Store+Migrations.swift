public import BillingCore

extension SQLStore {
    /// Registers an ordered migration's server price (`MigrationOrders.register`);
    /// the same external id again returns the order.
    public func createMigrationOrder(
        accountID: String,
        externalID: String,
        description: String,
        serverPrice: Money
    ) async throws(BillingError) -> MigrationOrder {
        try IDs.check(externalID, "external id")
        return try await decide { db, now in
            try MigrationOrders.register(
                account: try AccountRepository.require(db, accountID),
                externalID: externalID,
                description: description,
                serverPrice: serverPrice,
                existing: try MigrationRepository.byExternalID(db, accountID: accountID, externalID: externalID),
                now: now
            )
        }
    }

    public func migrationOrder(_ id: String) async throws(BillingError) -> MigrationOrder {
        try await read { db in try MigrationRepository.require(db, id) }
    }

    /// Pays an order once (`MigrationOrders.pay`): from the balance at once,
    /// or through a New payment whose Paid end credits, then debits.
    public func payMigrationOrder(
        _ orderID: String,
        payerID: String?,
        option: PaymentOption,
        idempotencyKey: IdempotencyKey? = nil
    ) async throws(BillingError) -> (order: MigrationOrder, payment: Payment?) {
        let fingerprint = Idempotency.fingerprint(payingMigration: orderID, payerID: payerID, option: option)
        let lifetime = configuration.idempotencyKeyLifetime
        let limits = configuration.limits
        let invoiceTerms = configuration.invoices
        return try await decide { db, now in
            let order = try MigrationRepository.require(db, orderID)
            if let idempotencyKey {
                let stored = try IdempotencyRepository.fetch(
                    db,
                    accountID: order.accountID,
                    operation: .payMigration,
                    key: idempotencyKey
                )
                if let first = try Idempotency.replay(stored, fingerprint: fingerprint, now: now) {
                    // The first call's result: the order and the payment it made ("" when paid from the balance).
                    return Change((order, first.isEmpty ? nil : try PaymentRepository.require(db, first)))
                }
            }
            let account = try AccountRepository.require(db, order.accountID)
            var change = try MigrationOrders.pay(
                order,
                account: account,
                funds: try AccountRepository.funds(db, account),
                payerID: payerID,
                payer: try payerID.flatMap { try AccountRepository.fetchPayer(db, $0) },
                option: option,
                chargedMethod: try Self.chargedMethod(db, option),
                limits: limits,
                invoice: try Self.invoiceIssue(db, option, invoiceTerms, now: now),
                now: now
            )
            if let idempotencyKey {
                change.effects.append(
                    Idempotency.remember(
                        idempotencyKey,
                        accountID: order.accountID,
                        operation: .payMigration,
                        fingerprint: fingerprint,
                        resultID: change.result.payment?.id ?? "",
                        now: now,
                        lifetime: lifetime
                    )
                )
            }
            return change
        }
    }
}
