public import BillingCore

/// How the store opens its file.
public struct StorageConfiguration: Sendable {
    /// The SQLite file; created readable by its owner only if missing.
    public var path: String
    /// How long an idempotency key is remembered. 24 hours covers every retry
    /// policy of the callers we know (and Stripe keeps its keys as long).
    public var idempotencyKeyLifetime: Duration
    /// How long a writer waits for SQLite's lock before failing with a
    /// retryable error. Other processes (the CLI, an operator's sqlite3) may
    /// hold it briefly; 5 s is far above any transaction of ours.
    public var busyTimeout: Duration
    /// Currencies accounts may be in, their top-up limits and each payment
    /// system's limits: checked inside the transaction that records a
    /// payment, where the account's currency is known.
    public var limits: PaymentLimits
    /// The issuer, number series and terms of invoices issued here.
    public var invoices: InvoiceTerms

    public init(
        path: String,
        idempotencyKeyLifetime: Duration = .seconds(24 * 3600),
        busyTimeout: Duration = .seconds(5),
        limits: PaymentLimits = .seedDefault,
        invoices: InvoiceTerms = .development
    ) {
        self.path = path
        self.idempotencyKeyLifetime = idempotencyKeyLifetime
        self.busyTimeout = busyTimeout
        self.limits = limits
        self.invoices = invoices
    }
}
