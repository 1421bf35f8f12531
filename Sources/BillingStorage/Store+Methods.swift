public import BillingCore

extension SQLStore {
    /// The payer's methods, newest first; Removed ones only when asked.
    public func paymentMethods(payerID: String, includeRemoved: Bool) async throws(BillingError) -> [PaymentMethod] {
        try await read { db in
            _ = try AccountRepository.requirePayer(db, payerID)
            return try MethodRepository.methods(db, payerID: payerID, includeRemoved: includeRemoved)
        }
    }

    public func paymentMethod(_ id: String) async throws(BillingError) -> PaymentMethod {
        try await read { db in try MethodRepository.require(db, id) }
    }

    /// Makes a Confirmed method its payer's default (`SavedMethods.makeDefault`).
    public func setDefaultMethod(_ id: String) async throws(BillingError) -> PaymentMethod {
        try await decide { db, now in
            let method = try MethodRepository.require(db, id)
            return try SavedMethods.makeDefault(
                method,
                currentDefault: try MethodRepository.defaultMethod(db, payerID: method.payerID),
                now: now
            )
        }
    }

    /// Marks a method Removed (`SavedMethods.remove`); the caller detaches it
    /// at the payment system first.
    public func removeMethod(_ id: String) async throws(BillingError) -> PaymentMethod {
        try await decide { db, now in
            let method = try MethodRepository.require(db, id)
            let payer = try AccountRepository.requirePayer(db, method.payerID)
            return SavedMethods.remove(method, account: try AccountRepository.require(db, payer.accountID), now: now)
        }
    }

    /// The Pending method of the Paid payment with this payment-system
    /// reference, Confirmed with the method's late reference
    /// (`SavedMethods.confirmLate`). False when there is none (sent twice,
    /// or already ended).
    public func confirmLateMethod(
        paymentReference: String,
        system: PaymentSystem,
        methodReference: String,
        displayName: String
    ) async throws(BillingError) -> Bool {
        try await decide { db, now in
            guard let payment = try PaymentRepository.paidByReference(db, reference: paymentReference, system: system),
                let methodID = payment.savedPaymentMethodID
            else {
                return try SavedMethods.confirmLate(
                    nil,
                    account: nil,
                    reference: methodReference,
                    displayName: displayName,
                    payerHasDefault: false,
                    now: now
                )
            }
            return try SavedMethods.confirmLate(
                try MethodRepository.require(db, methodID),
                account: try AccountRepository.require(db, payment.accountID),
                reference: methodReference,
                displayName: displayName,
                payerHasDefault: try MethodRepository.defaultMethod(db, payerID: payment.payerID) != nil,
                now: now
            )
        }
    }

    /// Methods still Pending whose payment was Paid before the cutoff end
    /// Failed (`SavedMethods.failStale`), 100 a call. Returns how many.
    public func failStalePendingMethods(paidBeforeMs cutoffMs: Int64) async throws(BillingError) -> Int {
        try await decide { db, now in
            let stale = try MethodRepository.stalePending(db, paidBefore: cutoffMs)
            var effects: [Effect] = []
            for (method, paymentID, accountID) in stale {
                effects += SavedMethods.failStale(
                    method,
                    account: try AccountRepository.require(db, accountID),
                    paymentID: paymentID,
                    now: now
                )
            }
            return Change(stale.count, effects)
        }
    }
}
