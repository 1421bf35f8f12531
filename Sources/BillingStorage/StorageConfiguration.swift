public import BillingCore
/// How the store opens its file.
public struct StorageConfiguration: Sendable {
    /// The SQLite file; created with its directory's permissions if missing.
    public var path: String
    /// How long an idempotency key is remembered. 24 hours covers every retry
    /// policy of the callers we know (and Stripe keeps its keys as long).
    public var idempotencyKeyLifetimeMs: Int64
    /// How long a writer waits for SQLite's lock before failing with a
    /// retryable error. Other processes (the CLI, an operator's sqlite3) may
    /// hold it briefly; 5 s is far above any transaction of ours.
    public var busyTimeoutSeconds: Double
    /// Currencies accounts may be in, their top-up limits and each payment
    /// system's limits: checked inside the transaction that records a
    /// payment, where the account's currency is known.
    public var limits: PaymentLimits

    public init(path: String, idempotencyKeyLifetimeMs: Int64 = 24 * 3_600_000, busyTimeoutSeconds: Double = 5,
                limits: PaymentLimits = .seedDefault) {
        self.path = path
        self.idempotencyKeyLifetimeMs = idempotencyKeyLifetimeMs
        self.busyTimeoutSeconds = busyTimeoutSeconds
        self.limits = limits
    }
}
