public import BillingCore
internal import GRDB

extension SQLiteStore {
    /// Claims up to `limit` New payments whose check is due, for `owner`, until
    /// `leaseMs` from now: two pollers (two billingd instances) never check the
    /// same payment at once, and a poller that dies loses its claims when the
    /// lease runs out.
    public func claimDuePayments(owner: String, limit: Int, leaseMs: Int64) async throws(BillingError) -> [Payment] {
        guard (1...1000).contains(limit) else { throw .invalidArgument("claim limit must be 1 to 1000") }
        let now = clock()
        // Look first in a read: an idle poller then never writes (nor wakes
        // the streams waiting on commits).
        let candidates = try await read { db in
            try String.fetchAll(db, sql: """
                SELECT id FROM payments
                WHERE status = 'new' AND next_check_at_ms IS NOT NULL AND next_check_at_ms <= ?
                  AND (lease_until_ms IS NULL OR lease_until_ms <= ?)
                ORDER BY next_check_at_ms, id LIMIT ?
                """, arguments: [now, now, limit])
        }
        if candidates.isEmpty { return [] }
        return try await write { db in
            var claimed: [Payment] = []
            for id in candidates {
                // The same conditions again: another poller may have claimed it since.
                try db.execute(sql: """
                    UPDATE payments SET lease_owner = ?, lease_until_ms = ?
                    WHERE id = ? AND status = 'new' AND (lease_until_ms IS NULL OR lease_until_ms <= ?)
                    """, arguments: [owner, now + leaseMs, id, now])
                if db.changesCount == 1 { claimed.append(try Self.requirePayment(db, id)) }
            }
            return claimed
        }
    }

    /// After a check that left the payment New: count the attempt, set the
    /// next check, release the claim. A payment that left New meanwhile (a
    /// webhook, a refresh) is left alone.
    public func recordCheck(paymentID: String, owner: String, nextCheckAtMs: Int64?) async throws(BillingError) {
        let now = clock()
        try await write { db in
            try db.execute(sql: """
                UPDATE payments SET check_attempts = check_attempts + 1, next_check_at_ms = ?, updated_at_ms = ?,
                    lease_owner = NULL, lease_until_ms = NULL
                WHERE id = ? AND status = 'new' AND (lease_owner IS NULL OR lease_owner = ?)
                """, arguments: [nextCheckAtMs, now, paymentID, owner])
        }
    }

    /// When the next New payment is due, or nil when none waits: the poller
    /// sleeps until then (or until a new payment is made), not a fixed tick.
    public func nextCheckDue() async throws(BillingError) -> Int64? {
        try await read { db in
            try Int64.fetchOne(db, sql: "SELECT MIN(COALESCE(MAX(next_check_at_ms, lease_until_ms), next_check_at_ms)) FROM payments WHERE status = 'new' AND next_check_at_ms IS NOT NULL")
        }
    }

    /// How many events of `accountID` (all accounts if nil) follow `sequence`
    /// (the account's own sequence, or the global one).
    public func eventBacklog(after sequence: UInt64, accountID: String?) async throws(BillingError) -> Int {
        try await read { db in
            if let accountID {
                return try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(account_sequence), 0) - ? FROM events WHERE account_id = ?",
                                        arguments: [Int64(clamping: sequence), accountID]).map { max(0, $0) } ?? 0
            }
            let latest = try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(sequence), 0) FROM events") ?? 0
            return Int(max(0, latest - Int64(clamping: sequence)))
        }
    }

    /// The highest committed event sequence (0 before any).
    public func latestSequence() async throws(BillingError) -> UInt64 {
        try await read { db in
            UInt64(try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(sequence), 0) FROM events") ?? 0)
        }
    }
}
