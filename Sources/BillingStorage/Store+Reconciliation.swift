public import BillingCore

/// What reconciliation compares with the payment systems: reads only.
extension SQLStore {
    /// The payments of `system` created in [fromMs, toMs) that the payment
    /// system could know of (started there, or Paid), oldest first, at most
    /// `limit`.
    public func paymentsToReconcile(
        system: PaymentSystem,
        fromMs: Int64,
        toMs: Int64,
        limit: Int
    ) async throws(BillingError) -> [Payment] {
        try await read { db in
            try db.rows(
                """
                SELECT * FROM payments
                WHERE system = ? AND created_at_ms >= ? AND created_at_ms < ?
                  AND (provider_reference != '' OR status = 'paid')
                ORDER BY created_at_ms, id LIMIT ?
                """,
                [system.rawValue, fromMs, toMs, limit]
            ).map(PaymentRepository.payment)
        }
    }

    /// The customers these payers have at `system` (Stripe's cus_…).
    public func customers(system: PaymentSystem, payerIDs: Set<String>) async throws(BillingError) -> [String] {
        guard !payerIDs.isEmpty else { return [] }
        return try await read { db in
            try db.rows(
                "SELECT payer_id, customer_reference FROM payer_customers WHERE system = ? ORDER BY customer_reference",
                [system.rawValue]
            ).filter { payerIDs.contains(try $0.get("payer_id")) }.map { try $0.get("customer_reference") }
        }
    }

    /// The references of the methods billingd holds usable (Pending or
    /// Confirmed) at `system`.
    public func usableMethodReferences(system: PaymentSystem) async throws(BillingError) -> Set<String> {
        try await read { db in
            Set(
                try db.values(
                    String.self,
                    """
                    SELECT provider_reference FROM payment_methods
                    WHERE system = ? AND status IN ('pending', 'confirmed') AND provider_reference != ''
                    """,
                    [system.rawValue]
                )
            )
        }
    }
}
