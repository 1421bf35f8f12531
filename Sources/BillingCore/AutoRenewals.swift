/// Services that renew themselves: one period, `daysBefore` days before they
/// expire, from the available balance first and otherwise with the payer's
/// default saved method (which pays only what the balance does not). The
/// poller asks `attempt` for each service whose window is open; the rules
/// of what an attempt writes live here.
///
/// - Once per period: an attempt is for the period that starts at the
///   service's current expiry, and an order (not cancelled) for that period
///   stops any other (`Period`, and a unique index in storage). A
///   renewal that completes moves the expiry, so the next period's window
///   opens a period later.
/// - A failed attempt (no money, no method, a refused payment) writes an
///   error notification and the next attempt `retry` later, until the
///   service expires; a charge the payment system refuses ends its payment
///   Cancelled (with its own notification) and the retry follows the same
///   schedule.
/// - Every attempt is audited (`service.auto_renewal`) and its
///   notifications and payments are events like any other.
public enum AutoRenewals {
    public static let maxDaysBefore = 90

    /// Whether the period starting at a service's expiry is already taken.
    public enum Period: Sendable, Hashable {
        case free
        /// An order with the service awaits its payment.
        case awaitingPayment
        /// An automatic order renewed this period already, and the expiry was
        /// set back since (an update of the service): not renewed twice.
        case renewed(orderID: String)
    }

    /// What an attempt did.
    public enum Attempt: Sendable, Hashable {
        /// Not due (window not open, expired, off, or the period is taken).
        case notDue
        /// Renewed from the balance at once.
        case renewed(RenewalOrder)
        /// A payment of the rest with the default saved method, to be started.
        case charging(RenewalOrder, Payment)
        /// Nothing renewed; the reason, as the notification says it.
        case failed(String)
    }

    /// - Throws: `invalidArgument` for a lead outside 1…90 days or longer
    ///   than the period; `notFound` for a payer of another account.
    public static func check(
        _ auto: AutoRenewal,
        service: RenewableService,
        account: Account,
        payer: Payer?
    ) throws(BillingError) {
        guard (1...maxDaysBefore).contains(auto.daysBefore) else {
            throw .invalidArgument("automatic renewal is 1 to \(maxDaysBefore) days before expiry")
        }
        guard auto.daysBefore <= service.periodDays else {
            throw .invalidArgument(
                "renewing \(auto.daysBefore) days before expiry needs a period of at least \(auto.daysBefore) days; service \(service.id) renews for \(service.periodDays)"
            )
        }
        if let payerID = auto.payerID {
            try IDs.check(payerID, "payer id")
            guard let payer, payer.id == payerID, payer.accountID == account.id else {
                throw .notFound("payer \(payerID.prefix(64)) not found")
            }
        }
    }

    /// Turns a service's automatic renewal on (a fresh schedule: the first
    /// attempt when its window opens) or off.
    public static func set(
        _ auto: AutoRenewal?,
        service: RenewableService,
        account: Account,
        payer: Payer?,
        now: Int64
    ) throws(BillingError) -> Change<RenewableService> {
        var saved = service
        if var auto {
            try check(auto, service: service, account: account, payer: payer)
            auto.nextAttemptAtMs = nil
            saved.autoRenewal = auto
        } else {
            saved.autoRenewal = nil
        }
        saved.updatedAtMs = now
        return Change(saved, [.saveService(saved)])
    }

    /// When the service's next attempt is due: its window's start, or the
    /// retry after a failed attempt; nil when off.
    public static func dueAtMs(_ service: RenewableService) -> Int64? {
        guard let auto = service.autoRenewal else { return nil }
        let (lead, overflow) = Int64(auto.daysBefore).multipliedReportingOverflow(by: Timestamps.dayMs)
        let opens = overflow ? Int64.min : service.expiresAtMs &- lead
        return max(opens, auto.nextAttemptAtMs ?? opens)
    }

    /// For people: when the next attempt is, or that none is left.
    static func nextAttempt(_ next: Int64, _ service: RenewableService) -> String {
        next < service.expiresAtMs
            // Rounded up: the attempt is not before the minute said.
            ? "the next attempt is at \(Timestamps.minute(next + 59_999))"
            : "no further attempt: it expires at \(Timestamps.minute(service.expiresAtMs))"
    }

    /// An automatic renewal's payment ended Cancelled (a declined card): the
    /// person is told which service and when it is tried again (the retry
    /// set by the attempt), and the audit trail records the failure.
    static func chargeFailed(
        _ service: RenewableService,
        _ auto: AutoRenewal,
        payment: Payment,
        reason: String,
        in list: inout EffectList
    ) {
        let next = max(auto.nextAttemptAtMs ?? list.now, list.now)
        list.append(
            .autoRenewalAttempt(
                service,
                nextAttemptAtMs: next,
                outcome: "failed: payment \(payment.id) of \(payment.amount) cancelled: \(reason)"
            )
        )
        list.notify(
            .error,
            "Automatic renewal failed",
            "\(service.displayName) was not renewed: the payment of \(payment.amount) was cancelled (\(reason)); \(nextAttempt(next, service))",
            paymentID: payment.id
        )
    }

    /// One attempt to renew `service` for one period.
    ///
    /// - Parameters:
    ///   - payer: the setting's payer, as the store found it.
    ///   - defaultMethod: that payer's default saved method, if any.
    ///   - period: whether an order already renews the period starting at
    ///     the service's expiry.
    ///   - retry: how long after a failed attempt the next one is due.
    public static func attempt(
        _ service: RenewableService,
        account: Account,
        funds: Funds,
        payer: Payer?,
        defaultMethod: PaymentMethod?,
        period: Period,
        limits: PaymentLimits,
        retry: Duration,
        now: Int64
    ) -> Change<Attempt> {
        guard let auto = service.autoRenewal, let due = dueAtMs(service), now >= due, now < service.expiresAtMs
        else { return Change(.notDue) }
        let retryMs = retry.milliseconds
        switch period {
        case .free:
            break
        case .awaitingPayment:
            // An order with the service awaits its payment: look again after the retry.
            var list = EffectList(account: account, funds: funds, now: now)
            list.append(
                .autoRenewalAttempt(
                    service,
                    nextAttemptAtMs: now + retryMs,
                    outcome: "waiting: an order with this service awaits its payment"
                )
            )
            return Change(.notDue, list.effects)
        case .renewed(let orderID):
            // Renewed once for this period; its expiry was set back since. Not again:
            // no more attempts this period, and the person is told.
            var list = EffectList(account: account, funds: funds, now: now)
            list.append(
                .autoRenewalAttempt(
                    service,
                    nextAttemptAtMs: service.expiresAtMs,
                    outcome: "not renewed again: order \(orderID) renewed this period; the expiry was set back since"
                )
            )
            list.notify(
                .error,
                "Automatic renewal stopped",
                "\(service.displayName) was renewed automatically for this period already (order \(orderID)), but its expiry was set back to \(Timestamps.minute(service.expiresAtMs)) since; it is not renewed again automatically: contact support or renew it yourself",
                paymentID: nil
            )
            return Change(.notDue, list.effects)
        }
        let items = [RenewalItem(serviceID: service.id, periods: 1)]
        do throws(BillingError) {
            let quote = try Renewals.quote(
                items,
                account: account,
                funds: funds,
                services: [service],
                option: nil,
                system: nil,
                limits: limits,
                now: now
            )
            let option: PaymentOption
            if quote.toPay.amountMinorUnits == 0 {
                option = .balance
            } else if auto.payerID != nil, let method = defaultMethod, method.status == .confirmed {
                option = .savedMethod(id: method.id)
            } else {
                let rest =
                    auto.payerID == nil
                    ? "no payer is set to pay the rest" : "the payer has no default saved payment method"
                throw BillingError.failedPrecondition(
                    "your available balance of \(funds.available) does not cover \(quote.total), and \(rest)"
                )
            }
            let renewed = try Renewals.renew(
                items,
                account: account,
                funds: funds,
                services: [service],
                payerID: option == .balance ? nil : auto.payerID,
                payer: option == .balance ? nil : payer,
                option: option,
                chargedMethod: option == .balance ? nil : defaultMethod,
                expectedTotal: nil,
                expectedToPay: nil,
                limits: limits,
                invoice: nil,
                now: now,
                autoPeriodMs: service.expiresAtMs
            )
            var list = EffectList(account: account, funds: funds, now: now)
            for effect in renewed.effects { list.append(effect) }
            let (order, payment) = renewed.result
            guard let payment else {
                let until = order.lines.first.map { Timestamps.day($0.newExpiresAtMs) } ?? "?"
                list.append(
                    .autoRenewalAttempt(
                        service,
                        nextAttemptAtMs: nil,
                        outcome: "renewed from the balance (order \(order.id)) until \(until)"
                    )
                )
                list.notify(
                    .info,
                    "Renewed automatically",
                    "\(service.displayName) was renewed until \(until) for \(order.total) from your balance",
                    paymentID: nil
                )
                return Change(.renewed(order), list.effects)
            }
            // Due again after `retry` unless the payment's Paid end moves the expiry first.
            list.append(
                .autoRenewalAttempt(
                    service,
                    nextAttemptAtMs: now + retryMs,
                    outcome:
                        "charging \(payment.amount) to the default method (payment \(payment.id), order \(order.id))"
                )
            )
            return Change(.charging(order, payment), list.effects)
        } catch {
            let next = now + retryMs
            let when = nextAttempt(next, service)
            var list = EffectList(account: account, funds: funds, now: now)
            list.append(
                .autoRenewalAttempt(
                    service,
                    nextAttemptAtMs: next < service.expiresAtMs ? next : service.expiresAtMs,
                    outcome: "failed: \(error.description)"
                )
            )
            list.notify(
                .error,
                "Automatic renewal failed",
                "\(service.displayName) was not renewed: \(error.description); \(when)",
                paymentID: nil
            )
            return Change(.failed(error.description), list.effects)
        }
    }
}
