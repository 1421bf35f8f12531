public import BillingCore

extension SQLStore {
    /// Creates an account; the same id with the same fields returns it (`Accounts.create`).
    public func createAccount(id: String, displayName: String, currency: Currency) async throws(BillingError) -> Account
    {
        let limits = configuration.limits
        return try await decide { db, now in
            try Accounts.create(
                id: id,
                displayName: displayName,
                currency: currency,
                existing: try AccountRepository.fetch(db, id),
                limits: limits,
                now: now
            )
        }
    }

    public func account(_ id: String) async throws(BillingError) -> Account {
        try await read { db in try AccountRepository.require(db, id) }
    }

    public func createPayer(accountID: String, displayName: String, email: String) async throws(BillingError) -> Payer {
        try await decide { db, now in
            try Accounts.addPayer(
                to: try AccountRepository.require(db, accountID),
                displayName: displayName,
                email: email,
                now: now
            )
        }
    }

    public func payers(accountID: String) async throws(BillingError) -> [Payer] {
        try await read { db in
            _ = try AccountRepository.require(db, accountID)
            return try AccountRepository.payers(db, accountID: accountID)
        }
    }

    public func payer(_ id: String) async throws(BillingError) -> Payer {
        try await read { db in try AccountRepository.requirePayer(db, id) }
    }

    /// The balance (the sum of the account's ledger), what renewals awaiting
    /// payment hold of it, and the last event of the account it includes.
    public func balance(accountID: String) async throws(BillingError) -> (funds: Funds, asOfSequence: UInt64) {
        try await readNow { db in
            guard let found = try AccountRepository.fundsAsOf(db, accountID) else {
                throw BillingError.notFound("account \(accountID.prefix(64)) not found")
            }
            return found
        }
    }

    /// The sum of the ledger, recomputed: tests compare it with `balance`.
    public func ledgerSum(accountID: String) async throws(BillingError) -> Int64 {
        try await read { db in try LedgerRepository.sum(db, accountID: accountID) }
    }

    /// How many credits a payment has: 1 once Paid, else 0 (reversals are
    /// entries of their own, not counted here).
    public func ledgerEntryCount(paymentID: String) async throws(BillingError) -> Int {
        try await read { db in try LedgerRepository.creditCount(db, paymentID: paymentID) }
    }

    /// The payer's customer at a payment system (Stripe's cus_…), if one was made.
    public func payerCustomer(payerID: String, system: PaymentSystem) async throws(BillingError) -> String? {
        try await read { db in
            let found = try AccountRepository.customer(db, payerID: payerID, system: system)
            return SavedMethods.customer(recorded: found.recorded, methodReferences: found.methods, system: system)
        }
    }

    /// Records the payer's customer at a payment system (first one wins).
    public func setPayerCustomer(payerID: String, system: PaymentSystem, reference: String) async throws(BillingError) {
        try await decide { _, _ in try Accounts.recordCustomer(payerID: payerID, system: system, reference: reference) }
    }
}

extension SQLStore {
    /// A page of an account's audit trail, oldest first (1 to 1000 entries).
    public func auditTrail(_ query: AuditQuery) async throws(BillingError) -> [AuditRecord] {
        guard (1...1000).contains(query.limit) else { throw .invalidArgument("audit page size must be 1 to 1000") }
        return try await read { db in try AuditRepository.page(db, query) }
    }
}
