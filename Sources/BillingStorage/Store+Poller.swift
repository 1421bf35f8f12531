public import BillingCore

/// The poller's schedule: when each New payment is checked next, and who
/// checks it (leases, for several billingd instances on one database).
extension SQLStore {
    /// Claims up to `limit` New payments whose check is due, for `owner`, for
    /// `lease`: two pollers (two billingd instances) never check the same
    /// payment at once, and a poller that dies loses its claims when the
    /// lease runs out.
    public func claimDuePayments(
        owner: String,
        limit: Int,
        lease: Duration,
        excluding systems: Set<PaymentSystem>
    ) async throws(BillingError) -> [Payment] {
        guard (1...1000).contains(limit) else { throw .invalidArgument("claim limit must be 1 to 1000") }
        let now = clock.nowMs
        let until = now + lease.milliseconds
        // Look first in a read: an idle poller then never writes (nor wakes
        // the streams waiting on commits).
        let candidates = try await read { db in
            try PaymentRepository.due(db, now: now, limit: limit, excluding: systems)
        }
        if candidates.isEmpty { return [] }
        let claimed = try await write { db in
            // The same conditions again: another poller may have claimed one since.
            try candidates.filter { try PaymentRepository.lease(db, $0, owner: owner, until: until, now: now) }
                .map { try PaymentRepository.require(db, $0) }
        }
        observer?.claimConflicts(candidates.count - claimed.count)
        return claimed
    }

    /// How many New payments are due for a check now, and since when the
    /// oldest of them is (the poller's lag).
    public func pollerBacklog() async throws(BillingError) -> (due: Int, oldestDueMs: Int64?) {
        let now = clock.nowMs
        return try await read { db in try PaymentRepository.backlog(db, now: now) }
    }

    /// After a check that left the payment New: count the attempt, set the
    /// next check, release the claim. A payment that left New meanwhile (a
    /// webhook, a refresh) is left alone.
    public func recordCheck(paymentID: String, owner: String, nextCheckAtMs: Int64?) async throws(BillingError) {
        let now = clock.nowMs
        try await write { db in
            try PaymentRepository.recordCheck(db, paymentID, owner: owner, nextCheckAtMs: nextCheckAtMs, now: now)
        }
    }

    public func renewClaim(paymentID: String, owner: String, lease: Duration) async throws(BillingError) -> Bool {
        let until = clock.nowMs + lease.milliseconds
        return try await write { db in try PaymentRepository.renew(db, paymentID, owner: owner, until: until) }
    }

    public func releaseClaims(paymentIDs: [String], owner: String) async throws(BillingError) {
        if paymentIDs.isEmpty { return }
        try await write { db in
            for id in paymentIDs { try PaymentRepository.release(db, id, owner: owner) }
        }
    }

    /// When the next New payment is due, or nil when none waits: the poller
    /// sleeps until then (or until a new payment is made), not a fixed tick.
    public func nextCheckDue() async throws(BillingError) -> Int64? {
        try await read { db in try PaymentRepository.nextDue(db) }
    }

    /// How many events of `accountID` (all accounts if nil) follow `sequence`
    /// (the account's own sequence, or the global one).
    public func eventBacklog(after sequence: UInt64, accountID: String?) async throws(BillingError) -> Int {
        try await read { db in
            let latest = try accountID.map { try EventLog.latest(db, accountID: $0) } ?? EventLog.latest(db)
            return Int(clamping: latest > sequence ? latest - sequence : 0)
        }
    }

    /// The highest committed event sequence (0 before any).
    public func latestSequence() async throws(BillingError) -> UInt64 {
        try await read { db in try EventLog.latest(db) }
    }
}
