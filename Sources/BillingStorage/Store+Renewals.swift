public import BillingCore

extension SQLStore {
    /// Registers or updates a service that can be renewed (`Renewals.register`);
    /// with `keepingAutoRenewal`, the stored service's automatic renewal
    /// stays whatever `service` says.
    public func upsertRenewableService(
        _ service: RenewableService,
        keepingAutoRenewal: Bool
    ) async throws(BillingError) -> RenewableService {
        try IDs.check(service.id, "service id")
        return try await decide { db, now in
            let existing = try RenewalRepository.fetchService(db, service.id)
            var service = service
            if keepingAutoRenewal, let existing, existing.accountID == service.accountID {
                service.autoRenewal = existing.autoRenewal
            }
            return try Renewals.register(
                service,
                account: try AccountRepository.require(db, service.accountID),
                existing: existing,
                autoPayer: try service.autoRenewal?.payerID.flatMap { try AccountRepository.fetchPayer(db, $0) },
                now: now
            )
        }
    }

    /// Turns a service's automatic renewal on or off (`AutoRenewals.set`).
    public func setAutoRenewal(
        accountID: String,
        serviceID: String,
        _ auto: AutoRenewal?
    ) async throws(BillingError) -> RenewableService {
        try IDs.check(serviceID, "service id")
        return try await decide { db, now in
            try AutoRenewals.set(
                auto,
                service: try RenewalRepository.requireService(db, serviceID, accountID: accountID),
                account: try AccountRepository.require(db, accountID),
                payer: try auto?.payerID.flatMap { try AccountRepository.fetchPayer(db, $0) },
                now: now
            )
        }
    }

    /// Services whose automatic renewal attempt is due, soonest expiry first.
    public func dueAutoRenewals(limit: Int) async throws(BillingError) -> [String] {
        guard (1...1000).contains(limit) else { throw .invalidArgument("limit must be 1 to 1000") }
        let now = clock.nowMs
        return try await read { db in try RenewalRepository.dueAutoRenewals(db, now: now, limit: limit) }
    }

    /// One automatic renewal attempt of a service (`AutoRenewals.attempt`),
    /// decided in the transaction that writes it: a second attempt for the
    /// same period (another poller, a retry) finds the first's order.
    public func attemptAutoRenewal(
        serviceID: String,
        retry: Duration
    ) async throws(BillingError) -> AutoRenewals.Attempt {
        let limits = configuration.limits
        return try await decide { db, now in
            guard let service = try RenewalRepository.fetchService(db, serviceID) else { return Change(.notDue) }
            let account = try AccountRepository.require(db, service.accountID)
            let payer = try service.autoRenewal?.payerID.flatMap { try AccountRepository.fetchPayer(db, $0) }
            return AutoRenewals.attempt(
                service,
                account: account,
                funds: try AccountRepository.funds(db, account),
                payer: payer,
                defaultMethod: try payer.flatMap { try MethodRepository.defaultMethod(db, payerID: $0.id) },
                period: try RenewalRepository.period(db, service),
                limits: limits,
                retry: retry,
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

    /// Prices a renewal at today's prices and splits it between the
    /// available balance and a payment (`Renewals.quote`); changes nothing.
    public func quoteRenewal(
        accountID: String,
        items: [RenewalItem],
        option: PaymentOption?
    ) async throws(BillingError) -> RenewalQuote {
        try Renewals.check(items)
        let now = clock.nowMs
        let limits = configuration.limits
        return try await read { db in
            let account = try AccountRepository.require(db, accountID)
            var system: PaymentSystem?
            if case .savedMethod(let id) = option {
                // Another account's method reads as none, as everywhere.
                guard let method = try MethodRepository.fetch(db, id),
                    try AccountRepository.fetchPayer(db, method.payerID)?.accountID == accountID
                else { throw BillingError.notFound("payment method \(id.prefix(64)) not found") }
                system = method.system
            } else {
                system = option.flatMap { Renewals.system(of: $0, chargedMethod: nil) }
            }
            return try Renewals.quote(
                items,
                account: account,
                funds: try AccountRepository.funds(db, account),
                services: try RenewalRepository.services(db, ids: items.map(\.serviceID), accountID: accountID),
                option: option,
                system: system,
                limits: limits,
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
        expectedToPay: Money?,
        idempotencyKey: IdempotencyKey?
    ) async throws(BillingError) -> (order: RenewalOrder, payment: Payment?) {
        try Renewals.check(items)
        let fingerprint = Idempotency.fingerprint(
            renewing: items,
            accountID: accountID,
            payerID: payerID,
            option: option,
            expectedTotal: expectedTotal,
            expectedToPay: expectedToPay
        )
        let lifetime = configuration.idempotencyKeyLifetime
        let limits = configuration.limits
        let invoiceTerms = configuration.invoices
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
                funds: try AccountRepository.funds(db, account),
                services: try RenewalRepository.services(db, ids: items.map(\.serviceID), accountID: accountID),
                payerID: payerID,
                payer: try payerID.flatMap { try AccountRepository.fetchPayer(db, $0) },
                option: option,
                chargedMethod: try Self.chargedMethod(db, option),
                expectedTotal: expectedTotal,
                expectedToPay: expectedToPay,
                servicesBeingAutoRenewed: try RenewalRepository.beingAutoRenewed(db, ids: items.map(\.serviceID)),
                limits: limits,
                invoice: try Self.invoiceIssue(db, option, invoiceTerms, now: now),
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
