/// A caller's idempotency key for one operation of one account.
public struct IdempotencyKey: Sendable, Hashable {
    public var key: String

    /// 128 bytes: a UUID or a request id with a prefix fits many times over;
    /// printable ASCII, so a key logged or shown is the key sent.
    public init(_ key: String) throws(BillingError) {
        guard !key.isEmpty, key.utf8.count <= 128,
            key.unicodeScalars.allSatisfy({ $0.value >= 0x21 && $0.value <= 0x7E })
        else {
            throw .invalidArgument("idempotency key must be 1 to 128 printable ASCII characters")
        }
        self.key = key
    }
}

/// A key remembered with the request it came with and what that request
/// made, until it expires.
public struct IdempotencyRecord: Sendable, Hashable {
    public var accountID: String
    public var operation: Idempotency.Operation
    public var key: String
    public var fingerprint: String
    /// The id of what the first request made ("" when it made nothing with
    /// an id, such as a migration order paid from the balance).
    public var resultID: String
    public var createdAtMs: Int64
    public var expiresAtMs: Int64

    public init(
        accountID: String,
        operation: Idempotency.Operation,
        key: String,
        fingerprint: String,
        resultID: String,
        createdAtMs: Int64,
        expiresAtMs: Int64
    ) {
        self.accountID = accountID
        self.operation = operation
        self.key = key
        self.fingerprint = fingerprint
        self.resultID = resultID
        self.createdAtMs = createdAtMs
        self.expiresAtMs = expiresAtMs
    }
}

/// The rule of idempotency keys: per account and operation, the same key with
/// the same request returns the first result; with another request it is
/// refused and nothing changes; after its lifetime it is forgotten.
public enum Idempotency {
    public enum Operation: String, Sendable, Hashable, CaseIterable {
        case createTopUp = "create_top_up"
        case renew
        case payMigration = "pay_migration"
    }

    /// The first result's id when `stored` is a live record of this request;
    /// nil when the key is new (or expired).
    ///
    /// - Throws: `idempotencyKeyReused` when the key came with another request.
    public static func replay(
        _ stored: IdempotencyRecord?,
        fingerprint: String,
        now: Int64
    ) throws(BillingError) -> String? {
        guard let stored, stored.expiresAtMs > now else { return nil }
        guard stored.fingerprint == fingerprint else { throw .idempotencyKeyReused(stored.key) }
        return stored.resultID
    }

    /// The effect that remembers `key` for `lifetime`.
    public static func remember(
        _ key: IdempotencyKey,
        accountID: String,
        operation: Operation,
        fingerprint: String,
        resultID: String,
        now: Int64,
        lifetime: Duration
    ) -> Effect {
        .rememberKey(
            IdempotencyRecord(
                accountID: accountID,
                operation: operation,
                key: key.key,
                fingerprint: fingerprint,
                resultID: resultID,
                createdAtMs: now,
                expiresAtMs: now + lifetime.milliseconds
            )
        )
    }

    /// Every field of a renewal, in a fixed order: equal requests, equal fingerprints.
    public static func fingerprint(
        renewing items: [RenewalItem],
        accountID: String,
        payerID: String?,
        option: PaymentOption,
        expectedTotal: Money?,
        expectedToPay: Money?
    ) -> String {
        "renew|\(accountID)|\(payerID ?? "")|\(items.map { "\($0.serviceID)x\($0.periods)" }.joined(separator: ","))|\(option)|\(expectedTotal.map(\.description) ?? "")|\(expectedToPay.map(\.description) ?? "")"
    }

    public static func fingerprint(payingMigration orderID: String, payerID: String?, option: PaymentOption) -> String {
        "pay_migration|\(orderID)|\(payerID ?? "")|\(option)"
    }
}
