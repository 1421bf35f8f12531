/// The rules of renewing services: what a renewal costs, what the expiries
/// become, and what an order paid from the balance or through a payment
/// writes. Pure: the store reads the account, its balance and the services,
/// and writes what these return.
public enum Renewals {
    /// What `renew` decided: the order, the payment made for it (nil when
    /// paid from the balance), and the effects.
    public typealias Renewed = (order: RenewalOrder, payment: Payment?)

    /// A renewal has 1 to 100 services (a panel renews what one page lists),
    /// each once, for 1 to 120 periods (ten years of monthly periods).
    public static func check(_ items: [RenewalItem]) throws(BillingError) {
        guard (1...100).contains(items.count) else { throw .invalidArgument("a renewal has 1 to 100 services") }
        guard Set(items.map(\.serviceID)).count == items.count else {
            throw .invalidArgument("each service may appear once")
        }
        for item in items {
            try IDs.check(item.serviceID, "service id")
            guard (1...120).contains(item.periods) else { throw .invalidArgument("periods must be 1 to 120") }
        }
    }

    /// A service as registered by an internal service: a positive price in
    /// the account's currency, a period of 1 to 3660 days (ten years), an
    /// expiry in the years `Timestamps` accepts. `existing` is the stored
    /// service of that id, if any: it must be the same account's.
    public static func register(
        _ service: RenewableService,
        account: Account,
        existing: RenewableService?,
        now: Int64
    ) throws(BillingError) -> Change<RenewableService> {
        try IDs.check(service.id, "service id")
        try Text.check(service.displayName, "display name", max: 200, required: true)
        guard service.pricePerPeriod.amountMinorUnits > 0 else {
            throw .invalidArgument("price per period must be positive")
        }
        guard (1...3660).contains(service.periodDays) else { throw .invalidArgument("period must be 1 to 3660 days") }
        try Timestamps.check(service.expiresAtMs, "expiry")
        guard service.pricePerPeriod.currency == account.currency else {
            throw .invalidArgument(
                "account \(account.id) pays in \(account.currency), not \(service.pricePerPeriod.currency)"
            )
        }
        if let existing, existing.accountID != service.accountID {
            throw .alreadyExists("service \(service.id) belongs to another account")
        }
        var saved = service
        saved.updatedAtMs = now
        return Change(saved, [.saveService(saved)])
    }

    /// The lines and total at today's prices. `services` holds the account's
    /// services named by `items`; one missing is `notFound`.
    public static func quote(
        _ items: [RenewalItem],
        account: Account,
        services: [RenewableService],
        now: Int64
    ) throws(BillingError) -> (lines: [RenewalLine], total: Money) {
        var total = Money.zero(account.currency)
        var lines: [RenewalLine] = []
        for item in items {
            let service = try find(item.serviceID, in: services, account: account)
            let amount = try service.pricePerPeriod.multiplied(by: Int64(item.periods))
            total = try total.adding(amount)
            lines.append(
                RenewalLine(
                    serviceID: service.id,
                    periods: item.periods,
                    amount: amount,
                    newExpiresAtMs: try newExpiry(service, periods: item.periods, now: now)
                )
            )
        }
        return (lines, total)
    }

    /// A renewal extends from the current expiry, or from now if it has
    /// passed. Checked: a stored expiry or period out of range is an error
    /// for this call, not a trap.
    public static func newExpiry(_ service: RenewableService, periods: Int, now: Int64) throws(BillingError) -> Int64 {
        let (days, overflow) = Int64(periods).multipliedReportingOverflow(by: Int64(service.periodDays))
        guard !overflow else {
            throw .failedPrecondition("renewing service \(service.id) would end after the year 9999")
        }
        return try Timestamps.adding(days: days, to: max(service.expiresAtMs, now), "renewing service \(service.id)")
    }

    /// Renews services. From the balance the order completes at once (a
    /// debit the balance must cover, and the new expiries); otherwise an
    /// order awaiting payment and its New payment, whose Paid end completes
    /// it. `expectedTotal` guards against a price change between quote and
    /// renewal.
    ///
    /// - Parameters:
    ///   - payer: the payer `payerID` names, as the store found it (nil when
    ///     there is none).
    ///   - chargedMethod: the saved method the option names, as the store found it.
    public static func renew(
        _ items: [RenewalItem],
        account: Account,
        balance: Money,
        services: [RenewableService],
        payerID: String?,
        payer: Payer?,
        option: PaymentOption,
        chargedMethod: PaymentMethod?,
        expectedTotal: Money?,
        limits: PaymentLimits,
        invoiceReference: String,
        now: Int64
    ) throws(BillingError) -> Change<Renewed> {
        try check(items)
        let (lines, total) = try quote(items, account: account, services: services, now: now)
        if let expectedTotal, expectedTotal != total {
            throw .failedPrecondition("the renewal now costs \(total), not \(expectedTotal); quote again")
        }
        var order = RenewalOrder(
            id: IDs.make("ro"),
            accountID: account.id,
            lines: lines.map {
                RenewalLine(serviceID: $0.serviceID, periods: $0.periods, amount: $0.amount, newExpiresAtMs: 0)
            },
            total: total,
            status: .awaitingPayment,
            paymentID: nil,
            createdAtMs: now,
            completedAtMs: nil
        )
        var list = EffectList(account: account, balance: balance, now: now)
        if case .balance = option {
            list.append(.insertRenewalOrder(order))
            order = try complete(order, services: services, in: &list)
            return Change((order, nil), list.effects)
        }
        guard let payerID else { throw .invalidArgument("payer id is required unless paying from the balance") }
        let recorded = try PaymentMachine.record(
            purpose: .renewal,
            amount: total,
            account: account,
            payerID: payerID,
            payer: payer,
            option: option,
            chargedMethod: chargedMethod,
            limits: limits,
            invoiceReference: invoiceReference,
            renewalOrderID: order.id,
            now: now
        )
        order.paymentID = recorded.result.id
        list.append(.insertRenewalOrder(order))
        for effect in recorded.effects { list.append(effect) }
        return Change((order, recorded.result), list.effects)
    }

    /// The debit and the new expiries of an order awaiting payment.
    static func complete(
        _ order: RenewalOrder,
        services: [RenewableService],
        in list: inout EffectList
    ) throws(BillingError) -> RenewalOrder {
        try list.debit(order.total, key: "debit:\(order.id)", reference: "renewal order \(order.id)")
        var completed = order
        for (index, line) in order.lines.enumerated() {
            var service = try find(line.serviceID, in: services, account: list.account)
            service.expiresAtMs = try newExpiry(service, periods: line.periods, now: list.now)
            service.updatedAtMs = list.now
            list.append(.saveService(service))
            completed.lines[index].newExpiresAtMs = service.expiresAtMs
        }
        completed.status = .completed
        completed.completedAtMs = list.now
        list.append(.updateRenewalOrder(completed, expected: order.status))
        return completed
    }

    private static func find(
        _ id: String,
        in services: [RenewableService],
        account: Account
    ) throws(BillingError) -> RenewableService {
        guard let service = services.first(where: { $0.id == id && $0.accountID == account.id }) else {
            throw .notFound("service \(id.prefix(64)) not found")
        }
        return service
    }
}
