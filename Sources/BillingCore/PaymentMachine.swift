/// The life of a payment, as pure decisions: what recording one writes, what
/// its payment system's reference writes, and what its one end (New → Paid or
/// New → Cancelled) writes with it. No I/O: the store reads the records in the
/// transaction that will write, calls these, and writes the effects they
/// return (`Effect`).
///
/// Every status change of every payment is decided by `finish`: the poller,
/// a refresh, an operator, a webhook and a cancel all end up here.
public enum PaymentMachine {
    /// Records a payment New, with a Pending method when the payer asked to
    /// save one. Nothing is charged here: the payment system is asked
    /// afterwards, with this payment's id.
    ///
    /// - Parameters:
    ///   - payer: the payer `payerID` names, as the store found it (nil: none).
    ///   - chargedMethod: the saved method a `.savedMethod` option names, as
    ///     the store found it (nil: none).
    ///   - invoice: for the invoice option, the next number of the issuer's
    ///     series (the store takes it in this transaction) and the terms;
    ///     the invoice document is issued with the payment.
    ///   - invoiceDescription: what the invoice says was sold (an order's
    ///     lines); nil: its purpose and order.
    /// - Throws: `notFound` for a payer of another account or a method of
    ///   another payer (the same answer as for ids that do not exist: others'
    ///   records are not to be discovered by guessing); `failedPrecondition`
    ///   for a method that is not Confirmed; `invalidArgument` for an amount
    ///   outside the limits (`PaymentLimits`).
    public static func record(
        purpose: PaymentPurpose,
        amount: Money,
        account: Account,
        payerID: String,
        payer: Payer?,
        option: PaymentOption,
        chargedMethod: PaymentMethod?,
        limits: PaymentLimits,
        invoice: InvoiceIssue?,
        invoiceDescription: String? = nil,
        renewalOrderID: String? = nil,
        migrationOrderID: String? = nil,
        now: Int64
    ) throws(BillingError) -> Change<Payment> {
        guard amount.currency == account.currency else {
            throw .invalidArgument("account \(account.id) pays in \(account.currency), not \(amount.currency)")
        }
        guard let payer, payer.accountID == account.id else { throw .notFound("payer \(payerID.prefix(64)) not found") }
        let id = IDs.make("pay")
        var system: PaymentSystem?
        var chargedMethodID: String?
        var savedMethod: PaymentMethod?
        var returnURL = ""
        var invoiceNumber: String?
        var nextCheck: Int64? = now
        switch option {
        case .invoice:
            guard let invoice else { throw .failedPrecondition("invoices are not issued here") }
            // Settled by an operator; the poller looks at it only once it is
            // overdue past its grace, to void it.
            invoiceNumber = invoice.number.text
            nextCheck = Invoices.voidAtMs(
                dueAtMs: now + Int64(invoice.terms.dueDays) * Timestamps.dayMs,
                terms: invoice.terms
            )
        case .savedMethod(let methodID):
            guard let method = chargedMethod, method.id == methodID, method.payerID == payer.id else {
                throw .notFound("payment method \(methodID.prefix(64)) not found")
            }
            guard method.status == .confirmed else {
                throw .failedPrecondition("payment method \(methodID) is \(method.status.rawValue), not confirmed")
            }
            system = method.system
            chargedMethodID = method.id
        case .paymentSystem(let chosen, let saveMethod, let url):
            try WebURL.check(url, "return URL")
            system = chosen
            returnURL = url
            if saveMethod {
                savedMethod = PaymentMethod(
                    id: IDs.make("pm"),
                    payerID: payer.id,
                    system: chosen,
                    status: .pending,
                    isDefault: false,
                    displayName: "\(chosen.displayName)\(SavedMethods.pendingSuffix)",
                    providerReference: "",
                    savedWithPaymentID: id,
                    createdAtMs: now,
                    updatedAtMs: now
                )
            }
        case .balance:
            throw .invalidArgument("a balance payment is not a payment record")
        }
        try limits.check(amount, purpose: purpose, system: system)
        let payment = Payment(
            id: id,
            accountID: account.id,
            payerID: payer.id,
            purpose: purpose,
            amount: amount,
            status: .new,
            optionKind: option.kind,
            system: system,
            paymentMethodID: chargedMethodID,
            savedPaymentMethodID: savedMethod?.id,
            providerReference: "",
            redirectURL: "",
            returnURL: returnURL,
            invoiceNumber: invoiceNumber,
            failureReason: "",
            renewalOrderID: renewalOrderID,
            migrationOrderID: migrationOrderID,
            createdAtMs: now,
            updatedAtMs: now,
            finishedAtMs: nil,
            nextCheckAtMs: nextCheck,
            checkAttempts: 0
        )
        // The method first: the payment's row names it.
        var effects: [Effect] = savedMethod.map { [.insertMethod($0)] } ?? []
        effects.append(.insertPayment(payment))
        if let invoice, case .invoice = option {
            let description =
                invoiceDescription
                ?? Invoices.description(purpose, renewalOrderID: renewalOrderID, migrationOrderID: migrationOrderID)
            effects.append(
                .insertInvoice(
                    Invoices.issue(
                        payment,
                        payer: payer,
                        number: invoice.number,
                        terms: invoice.terms,
                        description: description
                    )
                )
            )
        }
        effects.append(.event(accountID: account.id, atMs: now, .paymentStatusChanged(payment, previous: nil)))
        if let savedMethod {
            effects.append(.event(accountID: account.id, atMs: now, .methodStatusChanged(savedMethod, previous: nil)))
        }
        return Change(payment, effects)
    }

    /// What the payment system gave for a New payment: its own id and where
    /// to send the person. Not a status change, so no event.
    ///
    /// - Throws: `failedPrecondition` when the payment is no longer New.
    public static func attach(
        _ payment: Payment,
        reference: String,
        redirectURL: String,
        now: Int64
    ) throws(BillingError) -> Change<Payment> {
        try Text.check(reference, "provider reference", max: 255)
        try Text.check(redirectURL, "redirect URL", max: 2048)
        guard payment.status == .new else {
            throw .failedPrecondition("payment \(payment.id) is \(payment.status), not New")
        }
        // The same answer again (the caller and the poller started it under
        // one idempotency key): nothing changes, nothing is written.
        if payment.providerReference == reference && payment.redirectURL == redirectURL {
            return Change(payment)
        }
        var attached = payment
        attached.providerReference = reference
        attached.redirectURL = redirectURL
        attached.updatedAtMs = now
        return Change(
            attached,
            [.attachReference(paymentID: payment.id, reference: reference, redirectURL: redirectURL, atMs: now)]
        )
    }

    /// The one way a payment leaves New, with everything the change implies:
    /// - Paid: the ledger credit ("credit:<payment>", once), the method saved
    ///   with it Confirmed (the payer's default if it has none), a migration
    ///   or renewal order's debit and completion (with the new expiries);
    /// - Cancelled: the method being saved Failed, a charged method Failed
    ///   when the payment system refused it as such, a migration order back
    ///   to awaiting payment, a renewal order cancelled, a notification;
    /// and an event for each.
    ///
    /// An order the credit cannot cover (the balance owed more than the
    /// payment brings, after a chargeback) is not completed: the money stays
    /// on the balance, the order is released and the person is told.
    /// Refusing the end instead would leave money that arrived uncredited.
    ///
    /// - Returns: `.alreadyFinal` when the payment already has this status
    ///   (an earlier poll, refresh or webhook): nothing to write.
    /// - Throws: `invalidTransition` when it reached the other final status.
    public static func finish(
        _ context: PaymentContext,
        _ outcome: TransitionOutcome,
        now: Int64
    ) throws(BillingError) -> Change<TransitionResult> {
        try Text.check(outcome.failureReason, "failure reason", max: 500)
        let before = context.payment
        if before.status == outcome.target { return Change(.alreadyFinal(before)) }
        try before.status.checkTransition(to: outcome.target, paymentID: before.id)
        var after = before
        after.status = outcome.target
        after.failureReason = outcome.failureReason
        after.finishedAtMs = now
        after.updatedAtMs = now
        after.nextCheckAtMs = nil
        var list = EffectList(account: context.account, funds: context.funds, now: now)
        list.append(.finishPayment(after))
        list.event(.paymentStatusChanged(after, previous: .new))
        switch outcome.target {
        case .paid:
            try paid(after, context, outcome, &list)
        case .cancelled:
            cancelled(after, context, outcome, &list)
        case .new:
            preconditionFailure("TransitionOutcome refuses New")
        }
        return Change(.applied(after), list.effects)
    }

    private static func paid(
        _ payment: Payment,
        _ context: PaymentContext,
        _ outcome: TransitionOutcome,
        _ list: inout EffectList
    ) throws(BillingError) {
        try list.ledger(
            payment.amount,
            key: "credit:\(payment.id)",
            paymentID: payment.id,
            reference: "payment \(payment.id)"
        )
        if let method = context.savedMethod, method.id == payment.savedPaymentMethodID {
            SavedMethods.confirm(method, outcome, payerHasDefault: context.payerHasDefaultMethod, in: &list)
        }
        if let order = context.migrationOrder, order.id == payment.migrationOrderID, order.status == .paymentPending,
            order.paymentID == payment.id
        {
            if list.covers(order.serverPrice, releasing: nil) {
                _ = try MigrationOrders.complete(order, in: &list)
            } else {
                var released = order
                released.status = .awaitingPayment
                released.paymentID = nil
                list.append(.updateMigrationOrder(released, expected: order.status))
                list.notify(
                    .error,
                    "Order not paid",
                    "Payment of \(payment.amount) was credited to your balance, but your available balance of \(list.funds.available) does not cover the migration order of \(order.serverPrice): pay the order again",
                    paymentID: payment.id
                )
            }
        }
        if let order = context.renewalOrder, order.id == payment.renewalOrderID, order.status == .awaitingPayment {
            let renewedMeanwhile = order.autoPeriodMs.map { period in
                context.renewedServices.contains { $0.id == order.lines.first?.serviceID && $0.expiresAtMs != period }
            }
            if renewedMeanwhile == true {
                // An automatic renewal whose period someone renewed by hand
                // while its payment ran: never two renewals of one period.
                Renewals.cancel(order, in: &list)
                list.notify(
                    .info,
                    "Automatic renewal not needed",
                    "The service was renewed meanwhile; payment of \(payment.amount) was credited to your balance",
                    paymentID: payment.id
                )
            } else if list.covers(order.total, releasing: order.fromBalance) {
                let completed = try Renewals.complete(
                    order,
                    services: context.renewedServices,
                    releasing: order.fromBalance,
                    in: &list
                )
                if order.autoPeriodMs != nil, let line = completed.lines.first {
                    let name =
                        context.renewedServices.first { $0.id == line.serviceID }?.displayName ?? line.serviceID
                    list.notify(
                        .info,
                        "Renewed automatically",
                        "\(name) was renewed until \(Timestamps.day(line.newExpiresAtMs)) for \(order.total)",
                        paymentID: payment.id
                    )
                }
            } else {
                Renewals.cancel(order, in: &list)
                list.notify(
                    .error,
                    "Renewal not completed",
                    "Payment of \(payment.amount) was credited to your balance, but your available balance of \(list.funds.available) does not cover the renewal of \(order.total): renew again",
                    paymentID: payment.id
                )
            }
        }
    }

    private static func cancelled(
        _ payment: Payment,
        _ context: PaymentContext,
        _ outcome: TransitionOutcome,
        _ list: inout EffectList
    ) {
        if let method = context.savedMethod, method.id == payment.savedPaymentMethodID, method.status == .pending {
            SavedMethods.move(method, to: .failed, in: &list)
        }
        if outcome.chargedMethodUnusable, let method = context.chargedMethod, method.id == payment.paymentMethodID,
            method.status == .confirmed
        {
            SavedMethods.move(method, to: .failed, in: &list)
        }
        if let order = context.migrationOrder, order.id == payment.migrationOrderID, order.paymentID == payment.id {
            var released = order
            released.status = .awaitingPayment
            released.paymentID = nil
            list.append(.updateMigrationOrder(released, expected: order.status))
        }
        let reason = outcome.failureReason.isEmpty ? "no reason given" : outcome.failureReason
        if let order = context.renewalOrder, order.id == payment.renewalOrderID, order.status == .awaitingPayment {
            Renewals.cancel(order, in: &list)
            if order.autoPeriodMs != nil,
                let service = context.renewedServices.first(where: { $0.id == order.lines.first?.serviceID }),
                let auto = service.autoRenewal
            {
                AutoRenewals.chargeFailed(service, auto, payment: payment, reason: reason, in: &list)
            }
        }
        switch outcome.cancelledBy {
        case .paymentSystem:
            list.notify(
                .error,
                "Payment failed",
                "Payment of \(payment.amount) was cancelled: \(reason)",
                paymentID: payment.id
            )
        case .payer:
            list.notify(
                .info,
                "Cancelled by you",
                "Payment of \(payment.amount) was cancelled at your request: \(reason)",
                paymentID: payment.id
            )
        case .support:
            list.notify(
                .info,
                "Cancelled by support",
                "Payment of \(payment.amount) was cancelled by support: \(reason)",
                paymentID: payment.id
            )
        }
    }
}
