public import BillingCore
internal import GRDB

extension SQLiteStore {
    /// Registers or updates a service that can be renewed (`Renewals.register`).
    public func upsertRenewableService(_ service: RenewableService) async throws(BillingError) -> RenewableService {
        try IDs.check(service.id, "service id")
        return try await decide { db, now in
            try Renewals.register(
                service,
                account: try AccountRepository.require(db, service.accountID),
                existing: try RenewalRepository.fetchService(db, service.id),
                now: now
            )
        }
    }

    /// The account's services, soonest expiry first.
    public func renewableServices(accountID: String) async throws(BillingError) -> [RenewableService] {
        try await read { db in
            _ = try AccountRepository.require(db, accountID)
            return try RenewalRepository.services(db, accountID: accountID)
        }
    }

    /// Prices a renewal at today's prices (`Renewals.quote`); changes nothing.
    public func quoteRenewal(
        accountID: String,
        items: [RenewalItem]
    ) async throws(BillingError) -> (lines: [RenewalLine], total: Money) {
        try Renewals.check(items)
        let now = clock.nowMs
        return try await read { db in
            let account = try AccountRepository.require(db, accountID)
            return try Renewals.quote(
                items,
                account: account,
                services: try RenewalRepository.services(db, ids: items.map(\.serviceID), accountID: accountID),
                now: now
            )
        }
    }

    /// Renews services (`Renewals.renew`): from the balance at once, or an
    /// order and its New payment.
    public func renew(
        accountID: String,
        payerID: String?,
        items: [RenewalItem],
        option: PaymentOption,
        expectedTotal: Money?,
        idempotencyKey: IdempotencyKey?
    ) async throws(BillingError) -> (order: RenewalOrder, payment: Payment?) {
        try Renewals.check(items)
        let fingerprint = Idempotency.fingerprint(
            renewing: items,
            accountID: accountID,
            payerID: payerID,
            option: option,
            expectedTotal: expectedTotal
        )
        let lifetime = configuration.idempotencyKeyLifetime
        let limits = configuration.limits
        return try await decide { db, now in
            if let idempotencyKey {
                let stored = try IdempotencyRepository.fetch(
                    db,
                    accountID: accountID,
                    operation: .renew,
                    key: idempotencyKey
                )
                if let first = try Idempotency.replay(stored, fingerprint: fingerprint, now: now) {
                    let order = try RenewalRepository.requireOrder(db, first)
                    return Change((order, try order.paymentID.map { try PaymentRepository.require(db, $0) }))
                }
            }
            let account = try AccountRepository.require(db, accountID)
            var change = try Renewals.renew(
                items,
                account: account,
                balance: try AccountRepository.balance(db, account),
                services: try RenewalRepository.services(db, ids: items.map(\.serviceID), accountID: accountID),
                payerID: payerID,
                payer: try payerID.flatMap { try AccountRepository.fetchPayer(db, $0) },
                option: option,
                chargedMethod: try Self.chargedMethod(db, option),
                expectedTotal: expectedTotal,
                limits: limits,
                invoiceReference: try Self.invoiceReference(db, option),
                now: now
            )
            if let idempotencyKey {
                change.effects.append(
                    Idempotency.remember(
                        idempotencyKey,
                        accountID: account.id,
                        operation: .renew,
                        fingerprint: fingerprint,
                        resultID: change.result.order.id,
                        now: now,
                        lifetime: lifetime
                    )
                )
            }
            return change
        }
    }

    public func renewalOrder(_ id: String) async throws(BillingError) -> RenewalOrder {
        try await read { db in try RenewalRepository.requireOrder(db, id) }
    }
}
