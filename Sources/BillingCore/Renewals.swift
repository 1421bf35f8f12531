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
    /// expiry in the years `Timestamps` accepts, and an automatic renewal
    /// `AutoRenewals.check` accepts. `existing` is the stored service of that
    /// id, if any: it must be the same account's.
    ///
    /// - Parameter autoPayer: the payer the automatic renewal names, as the
    ///   store found it.
    public static func register(
        _ service: RenewableService,
        account: Account,
        existing: RenewableService?,
        autoPayer: Payer?,
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
        if let auto = service.autoRenewal {
            try AutoRenewals.check(auto, service: service, account: account, payer: autoPayer)
            // A changed setting starts a fresh schedule; an unchanged one keeps its retry.
            let kept = existing?.autoRenewal.map { ($0.daysBefore, $0.payerID) == (auto.daysBefore, auto.payerID) }
            saved.autoRenewal?.nextAttemptAtMs = kept == true ? existing?.autoRenewal?.nextAttemptAtMs : nil
        }
        saved.updatedAtMs = now
        return Change(saved, [.saveService(saved)])
    }

    /// The lines and total at today's prices, and how they would be paid:
    /// the available balance first (`Funds`), the rest by `option`.
    /// `services` holds the account's services named by `items`; one missing
    /// is `notFound`.
    ///
    /// - Parameters:
    ///   - option: the way the rest would be paid; nil when not chosen yet
    ///     (no payment system's minimum applies then).
    ///   - system: the payment system that option pays through (a saved
    ///     method's, as the store found it); nil for an invoice.
    public static func quote(
        _ items: [RenewalItem],
        account: Account,
        funds: Funds,
        services: [RenewableService],
        option: PaymentOption?,
        system: PaymentSystem?,
        limits: PaymentLimits,
        now: Int64
    ) throws(BillingError) -> RenewalQuote {
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
        let zero = Money.zero(account.currency)
        let fromBalance = min(funds.spendable, total)
        let shortfall = try total.subtracting(fromBalance)
        var quote = RenewalQuote(
            lines: lines,
            total: total,
            fromBalance: fromBalance,
            toPay: shortfall,
            credited: zero,
            note: ""
        )
        guard shortfall > zero else { return quote }
        if case .balance = option {
            quote.note =
                "your available balance of \(funds.available) is short by \(shortfall): top up or pay another way"
            return quote
        }
        if let system, let range = limits.range(system, account.currency), shortfall > range.maximum {
            quote.note =
                "\(system.displayName) takes at most \(range.maximum): pay from the balance or by invoice, or renew fewer services at once"
        } else if let system, let range = limits.range(system, account.currency), shortfall < range.minimum {
            quote.toPay = range.minimum
            quote.credited = try range.minimum.subtracting(shortfall)
            quote.note =
                "\(system.displayName) takes at least \(range.minimum): the payment is \(range.minimum), and the \(quote.credited) beyond the renewal is credited to your balance"
        }
        return quote
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

    /// Renews services, from the available balance first. The balance
    /// option, or a balance that covers the total whatever the option,
    /// completes the order at once with one debit of the total. Otherwise the
    /// order awaits a New payment of the rest (`quote`: at least the payment
    /// system's minimum), holding its part of the balance; the payment's Paid
    /// end credits the payment and completes the order with one debit of the
    /// total, its Cancelled end releases the hold and debits nothing.
    ///
    /// - Parameters:
    ///   - payer: the payer `payerID` names, as the store found it (nil when
    ///     there is none).
    ///   - chargedMethod: the saved method the option names, as the store found it.
    ///   - expectedTotal: the total the person agreed to; another is
    ///     `failedPrecondition` (a price changed since the quote).
    ///   - expectedToPay: the payment the person agreed to; another is
    ///     `failedPrecondition` (the balance moved since the quote).
    ///   - servicesBeingAutoRenewed: services with an automatic renewal
    ///     awaiting its payment: renewing one by hand now is refused, or the
    ///     two could renew two periods where one was meant.
    public static func renew(
        _ items: [RenewalItem],
        account: Account,
        funds: Funds,
        services: [RenewableService],
        payerID: String?,
        payer: Payer?,
        option: PaymentOption,
        chargedMethod: PaymentMethod?,
        expectedTotal: Money?,
        expectedToPay: Money?,
        servicesBeingAutoRenewed: [String] = [],
        limits: PaymentLimits,
        invoice: InvoiceIssue?,
        now: Int64,
        autoPeriodMs: Int64? = nil
    ) throws(BillingError) -> Change<Renewed> {
        try check(items)
        for (name, expected) in [("expected total", expectedTotal), ("expected to pay", expectedToPay)] {
            guard let expected else { continue }
            guard expected.currency == account.currency, expected.amountMinorUnits >= 0 else {
                throw .invalidArgument("\(name) must be a non-negative amount in \(account.currency), not \(expected)")
            }
        }
        if let bad = servicesBeingAutoRenewed.first(where: { id in items.contains { $0.serviceID == id } }) {
            throw .failedPrecondition(
                "service \(bad) is being renewed automatically and its payment is not finished; wait for it, or turn its automatic renewal off and cancel that payment"
            )
        }
        let quote = try quote(
            items,
            account: account,
            funds: funds,
            services: services,
            option: option,
            system: system(of: option, chargedMethod: chargedMethod),
            limits: limits,
            now: now
        )
        if let expectedTotal, expectedTotal != quote.total {
            throw .failedPrecondition("the renewal now costs \(quote.total), not \(expectedTotal); quote again")
        }
        let fromBalanceOnly = option == .balance || quote.toPay.amountMinorUnits == 0
        let toPay = fromBalanceOnly ? Money.zero(account.currency) : quote.toPay
        // From the balance the balance's own rule answers (insufficient funds), not the quote's.
        if let expectedToPay, option != .balance, expectedToPay != toPay {
            throw .failedPrecondition(
                "the renewal now needs a payment of \(toPay) (\(quote.fromBalance) from the balance), not \(expectedToPay); quote again"
            )
        }
        var order = RenewalOrder(
            id: IDs.make("ro"),
            accountID: account.id,
            lines: quote.lines.map {
                RenewalLine(serviceID: $0.serviceID, periods: $0.periods, amount: $0.amount, newExpiresAtMs: 0)
            },
            total: quote.total,
            fromBalance: fromBalanceOnly ? quote.total : quote.fromBalance,
            status: .awaitingPayment,
            paymentID: nil,
            createdAtMs: now,
            completedAtMs: nil,
            autoPeriodMs: autoPeriodMs
        )
        var list = EffectList(account: account, funds: funds, now: now)
        if fromBalanceOnly {
            list.append(.insertRenewalOrder(order))
            order = try complete(order, services: services, releasing: nil, in: &list)
            return Change((order, nil), list.effects)
        }
        guard let payerID else { throw .invalidArgument("payer id is required unless paying from the balance") }
        let recorded = try PaymentMachine.record(
            purpose: .renewal,
            amount: quote.toPay,
            account: account,
            payerID: payerID,
            payer: payer,
            option: option,
            chargedMethod: chargedMethod,
            limits: limits,
            invoice: invoice,
            invoiceDescription: Self.invoiceDescription(order, quote: quote, services: services),
            renewalOrderID: order.id,
            now: now
        )
        order.paymentID = recorded.result.id
        try list.hold(order.fromBalance)
        list.append(.insertRenewalOrder(order))
        for effect in recorded.effects { list.append(effect) }
        return Change((order, recorded.result), list.effects)
    }

    /// What a renewal's invoice says was sold, one line each: the order, each
    /// service and its periods, and what the balance paid of the total.
    static func invoiceDescription(_ order: RenewalOrder, quote: RenewalQuote, services: [RenewableService]) -> String {
        let lines = quote.lines.map { line in
            let name = services.first { $0.id == line.serviceID }?.displayName ?? line.serviceID
            let until = Timestamps.day(line.newExpiresAtMs)
            return
                "\(name) (\(line.serviceID)): \(line.periods) period\(line.periods == 1 ? "" : "s") until \(until), \(line.amount)"
        }
        var text = (["Renewal, order \(order.id):"] + lines).joined(separator: "\n")
        if quote.fromBalance.amountMinorUnits > 0 {
            text += "\nTotal \(quote.total), of which \(quote.fromBalance) from the balance"
        }
        if quote.credited.amountMinorUnits > 0 {
            text += "\n\(quote.credited) beyond the renewal is credited to the balance"
        }
        return text
    }

    /// The payment system an option pays through: nil for an invoice and the balance.
    public static func system(of option: PaymentOption, chargedMethod: PaymentMethod?) -> PaymentSystem? {
        switch option {
        case .paymentSystem(let system, _, _): return system
        case .savedMethod(let id): return chargedMethod.flatMap { $0.id == id ? $0.system : nil }
        case .invoice, .balance: return nil
        }
    }

    /// The debit and the new expiries of an order awaiting payment.
    ///
    /// - Parameter hold: what the order held of the balance while it awaited
    ///   its payment (nil: it held nothing).
    static func complete(
        _ order: RenewalOrder,
        services: [RenewableService],
        releasing hold: Money?,
        in list: inout EffectList
    ) throws(BillingError) -> RenewalOrder {
        try list.debit(order.total, key: "debit:\(order.id)", reference: "renewal order \(order.id)", releasing: hold)
        var completed = order
        for (index, line) in order.lines.enumerated() {
            var service = try find(line.serviceID, in: services, account: list.account)
            service.expiresAtMs = try newExpiry(service, periods: line.periods, now: list.now)
            service.updatedAtMs = list.now
            // A new period: an automatic renewal's retries start over with it.
            service.autoRenewal?.nextAttemptAtMs = nil
            list.append(.saveService(service))
            completed.lines[index].newExpiresAtMs = service.expiresAtMs
        }
        completed.status = .completed
        completed.completedAtMs = list.now
        list.append(.updateRenewalOrder(completed, expected: order.status))
        return completed
    }

    /// An order awaiting payment that will not complete: cancelled, its
    /// hold of the balance given back, nothing debited.
    static func cancel(_ order: RenewalOrder, in list: inout EffectList) {
        list.release(order.fromBalance)
        var cancelled = order
        cancelled.status = .cancelled
        list.append(.updateRenewalOrder(cancelled, expected: order.status))
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

/// A renewal priced at today's prices and split between the available
/// balance and a payment (`Renewals.quote`).
public struct RenewalQuote: Sendable, Hashable {
    public var lines: [RenewalLine]
    public var total: Money
    /// Taken from the available balance (held while the payment is New).
    public var fromBalance: Money
    /// What the payment is for: the rest of the total, or the payment
    /// system's minimum when the rest is below it; zero when the balance
    /// covers the total.
    public var toPay: Money
    /// The part of the payment beyond the renewal, credited to the balance
    /// (the minimum's excess over the rest); zero otherwise.
    public var credited: Money
    /// For people: why the split is as it is; empty when there is nothing to say.
    public var note: String

    public init(lines: [RenewalLine], total: Money, fromBalance: Money, toPay: Money, credited: Money, note: String) {
        self.lines = lines
        self.total = total
        self.fromBalance = fromBalance
        self.toPay = toPay
        self.credited = credited
        self.note = note
    }
}
