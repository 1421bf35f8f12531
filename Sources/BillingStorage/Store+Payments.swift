public import BillingCore

extension SQLStore {
    /// Records a top-up New (`PaymentMachine.record`). With an idempotency
    /// key, a repeat of the same request returns the first payment; the same
    /// key with another request throws `idempotencyKeyReused` and changes
    /// nothing (`Idempotency`).
    public func createTopUp(
        _ request: TopUpRequest,
        idempotencyKey: IdempotencyKey?
    ) async throws(BillingError) -> Payment {
        try request.validate()
        let lifetime = configuration.idempotencyKeyLifetime
        let limits = configuration.limits
        let invoiceTerms = configuration.invoices
        return try await decide { db, now in
            if let idempotencyKey {
                let stored = try IdempotencyRepository.fetch(
                    db,
                    accountID: request.accountID,
                    operation: .createTopUp,
                    key: idempotencyKey
                )
                if let first = try Idempotency.replay(stored, fingerprint: request.fingerprint, now: now) {
                    return Change(try PaymentRepository.require(db, first))
                }
            }
            let account = try AccountRepository.require(db, request.accountID)
            var change = try PaymentMachine.record(
                purpose: .topUp,
                amount: request.amount,
                account: account,
                payerID: request.payerID,
                payer: try AccountRepository.fetchPayer(db, request.payerID),
                option: request.option,
                chargedMethod: try Self.chargedMethod(db, request.option),
                limits: limits,
                invoice: try Self.invoiceIssue(db, request.option, invoiceTerms, now: now),
                now: now
            )
            if let idempotencyKey {
                change.effects.append(
                    Idempotency.remember(
                        idempotencyKey,
                        accountID: account.id,
                        operation: .createTopUp,
                        fingerprint: request.fingerprint,
                        resultID: change.result.id,
                        now: now,
                        lifetime: lifetime
                    )
                )
            }
            return change
        }
    }

    /// The saved method a `.savedMethod` option names, if it exists.
    static func chargedMethod(_ db: any SQLSession, _ option: PaymentOption) throws -> PaymentMethod? {
        guard case .savedMethod(let id) = option else { return nil }
        return try MethodRepository.fetch(db, id)
    }

    /// For the invoice option: the next number of the issuer's series at
    /// `now` (taken for good only if this transaction commits) and the terms.
    static func invoiceIssue(
        _ db: any SQLSession,
        _ option: PaymentOption,
        _ terms: InvoiceTerms,
        now: Int64
    ) throws -> InvoiceIssue? {
        guard case .invoice = option else { return nil }
        let series = Invoices.series(terms, nowMs: now)
        return InvoiceIssue(number: try InvoiceRepository.next(db, series: series), terms: terms)
    }

    public func payment(_ id: String) async throws(BillingError) -> Payment {
        try await read { db in try PaymentRepository.require(db, id) }
    }

    /// Records what the payment system gave for a New payment (`PaymentMachine.attach`).
    public func attachProviderReference(
        paymentID: String,
        reference: String,
        redirectURL: String
    ) async throws(BillingError) -> Payment {
        try await decide { db, now in
            try PaymentMachine.attach(
                try PaymentRepository.require(db, paymentID),
                reference: reference,
                redirectURL: redirectURL,
                now: now
            )
        }
    }

    /// The one way a payment leaves New (`PaymentMachine.finish`): the
    /// payment and everything its end touches are read, the end decided and
    /// written in one transaction. The poller, a refresh, an operator and a
    /// webhook all call this; whoever comes second gets `.alreadyFinal`.
    public func transition(
        paymentID: String,
        _ outcome: TransitionOutcome
    ) async throws(BillingError) -> TransitionResult {
        try await decide { db, now in
            try PaymentMachine.finish(try PaymentRepository.context(db, paymentID), outcome, now: now)
        }
    }

    /// A refund, chargeback or dispute won of a Paid payment, once per its
    /// reference (`Reversals.record`); false when it was recorded before.
    public func recordReversal(_ reversal: Reversal) async throws(BillingError) -> Bool {
        try await decide { db, now in
            let payment = try PaymentRepository.require(db, reversal.paymentID)
            let account = try AccountRepository.require(db, payment.accountID)
            let key = payment.system.map { Reversals.key(reversal, system: $0) } ?? ""
            return try Reversals.record(
                reversal,
                payment: payment,
                account: account,
                balance: try AccountRepository.balance(db, account),
                history: try Reversals.History(
                    recorded: try LedgerRepository.hasEntry(db, key: key),
                    entries: try LedgerRepository.reversalEntries(db, paymentID: payment.id)
                ),
                now: now
            )
        }
    }

    public func listPayments(_ query: PaymentQuery) async throws(BillingError) -> Page<Payment> {
        try Paging.checkPageSize(query.pageSize)
        let cursor = try query.pageToken.map { token throws(BillingError) in try PageToken(token) }
        return try await read { db in
            _ = try AccountRepository.require(db, query.accountID)
            return try PaymentRepository.page(db, query, after: cursor)
        }
    }

    /// Events after `sequence`, oldest first: of one account by its account
    /// sequence, or of all by the global one.
    public func events(after sequence: UInt64, accountID: String?, limit: Int) async throws(BillingError) -> [Event] {
        try Paging.checkEventBatch(limit)
        return try await read { db in try EventLog.events(db, after: sequence, accountID: accountID, limit: limit) }
    }

    /// An account's notifications, newest first, paged like payments.
    public func notifications(
        accountID: String,
        pageSize: Int,
        pageToken: String?
    ) async throws(BillingError) -> Page<Notification> {
        try Paging.checkPageSize(pageSize)
        let cursor = try pageToken.map { token throws(BillingError) in try PageToken(token) }
        return try await read { db in
            try NotificationRepository.page(db, accountID: accountID, pageSize: pageSize, after: cursor)
        }
    }
}

extension SQLStore {
    /// An invoice and its payment, by the invoice's number or its payment's id.
    public func invoiceDocument(_ numberOrPaymentID: String) async throws(BillingError) -> InvoiceDocument {
        try Text.check(numberOrPaymentID, "invoice", max: 64, required: true)
        return try await read { db in
            guard
                let invoice = try InvoiceRepository.fetch(db, number: numberOrPaymentID)
                    ?? InvoiceRepository.fetch(db, paymentID: numberOrPaymentID)
            else {
                // An invoice payment made before invoice documents has a reference, no document.
                // (Not found either way: an account client hears the same for every miss.)
                if let legacy = try PaymentRepository.legacyInvoice(db, numberOrPaymentID) {
                    let state =
                        legacy.status == .new ? "it can still be settled or cancelled" : "it is \(legacy.status)"
                    throw BillingError.notFound(
                        "invoice \(numberOrPaymentID.prefix(64)) has no document: payment \(legacy.id) was invoiced before billingd issued invoice documents; \(state)"
                    )
                }
                throw BillingError.notFound("invoice \(numberOrPaymentID.prefix(64)) not found")
            }
            return InvoiceDocument(invoice: invoice, payment: try PaymentRepository.require(db, invoice.paymentID))
        }
    }
}
