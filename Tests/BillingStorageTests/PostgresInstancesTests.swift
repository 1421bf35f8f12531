import BillingCore
import BillingPostgres
import BillingStorage
import BillingTestSupport
import Foundation
import Synchronization
import Testing

/// Several billingd instances on one PostgreSQL database: each is a
/// `PostgresStore` of its own (its own connections, writer and listener),
/// as three processes would be. Nothing here depends on timing: whatever
/// the interleaving, the log and the claims must come out whole.
@Suite struct PostgresInstancesTests {
    /// Writers on three instances at once; a reader on each follows the log
    /// as it grows. Each reader must see 1, 2, 3, … with no gap and no
    /// repeat at every read (a `SEQUENCE` would let it see 43 before 42
    /// commits and skip 42 for good), and the books must add up.
    @Test func writersOnThreeInstancesMakeOneGapFreeLogInCommitOrder() async throws {
        let f = try await StoreFixture(.postgres)
        let instances: [any SQLStore] = [f.store, try await f.sibling(), try await f.sibling()]
        let writersDone = Counter()
        let perWriter = 25
        try await withThrowingTaskGroup(of: [UInt64].self) { group in
            for (index, store) in instances.enumerated() {
                group.addTask {
                    defer { writersDone.value.add(1, ordering: .sequentiallyConsistent) }
                    for step in 0..<perWriter {
                        let payment = try await store.createTopUp(
                            TopUpRequest(
                                accountID: f.account.id,
                                payerID: f.payer.id,
                                amount: Money(minorUnits: Int64(100 + index * 10 + step), .usd),
                                option: .invoice
                            ),
                            idempotencyKey: nil
                        )
                        _ = try await store.transition(
                            paymentID: payment.id,
                            step % 4 == 0 ? .cancelled("cancelled by the test") : .paid
                        )
                    }
                    return []
                }
                group.addTask {
                    var seen: [UInt64] = []
                    while true {
                        let finished = writersDone.value.load(ordering: .sequentiallyConsistent) == instances.count
                        let batch = try await store.events(after: seen.last ?? 0, accountID: nil, limit: 50)
                        for event in batch {
                            try #require(
                                event.sequence == (seen.last ?? 0) + 1,
                                "instance \(index) read \(event.sequence) after \(seen.last ?? 0)"
                            )
                            seen.append(event.sequence)
                        }
                        if finished && batch.isEmpty {
                            let latest = try await store.latestSequence()
                            if (seen.last ?? 0) == latest { break }
                        }
                        if batch.isEmpty { await Task.yield() }
                    }
                    return seen
                }
            }
            var logs: [[UInt64]] = []
            for try await log in group where !log.isEmpty { logs.append(log) }
            #expect(logs.count == instances.count)
            let latest = try await f.store.latestSequence()
            for log in logs { #expect(log == Array(1...latest)) }
        }
        #expect(try await f.checkInvariants() == [])
        let (_, problems) = try await instances[2].checkStorage()
        #expect(problems.isEmpty)
        // One credit per Paid payment, whichever instance wrote it.
        let paid = 3 * (perWriter - (perWriter + 3) / 4)
        var query = PaymentQuery(accountID: f.account.id)
        query.pageSize = 100
        let payments = try await f.store.listPayments(query)
        #expect(payments.items.filter { $0.status == .paid }.count == paid)
    }

    /// A commit on one instance wakes the streams and the poller of another
    /// (LISTEN/NOTIFY), without either polling.
    @Test func aCommitOnOneInstanceWakesAnother() async throws {
        let f = try await StoreFixture(.postgres)
        let other = try await f.sibling()
        let before = other.commits.generation
        _ = try await f.topUp("5.00", .invoice)
        let deadline = ContinuousClock.now + .seconds(120)
        while other.commits.generation == before && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(other.commits.generation > before, "the other instance was not woken")
        #expect(try await other.events(after: 0, accountID: f.account.id, limit: 10).count > 0)
    }

    /// The server drops every connection of billingd (a failover, a DBA, a
    /// proxy restart): calls fail with a retryable error at worst, and the
    /// store reconnects by itself; nothing written is lost or doubled.
    @Test func aStoreComesBackAfterItsConnectionsAreCut() async throws {
        let f = try await StoreFixture(.postgres)
        let server = try await PostgresServer.shared()
        let database = try #require(f.postgres?.database)
        let before = try await f.topUp("1.00", .invoice)
        for round in 0..<2 {
            try await server.sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(database)' AND application_name = 'billingd'",
                database: "postgres"
            )
            var made: Payment?
            for _ in 0..<5 where made == nil {
                do {
                    made = try await f.topUp("2.00", .invoice, key: "after-cut-\(round)")
                } catch BillingError.storage(_, let retryable) {
                    #expect(retryable, "a cut connection is a retryable failure")
                }
            }
            let payment = try #require(made, "the store did not come back")
            _ = try await f.store.transition(paymentID: payment.id, .paid)
        }
        _ = try await f.store.transition(paymentID: before.id, .paid)
        #expect(try await f.balanceMinor() == 5_00)
        #expect(try await f.checkInvariants() == [])
    }

    /// An instance that stalls while it holds the write lock holds the
    /// others' writes only for the lock timeout: they get a retryable
    /// "lock not available" (55P03), not a wait as long as the stall.
    @Test func aStalledWriterHoldsTheOthersOnlyForTheLockTimeout() async throws {
        let f = try await StoreFixture(.postgres)
        let other = try await f.sibling()
        let holding = DispatchSemaphore(value: 0)
        let released = DispatchSemaphore(value: 0)
        let stalled = Task {
            try await f.store.write { db in
                _ = try db.execute("SELECT 1")
                holding.signal()
                // Held until the other instance has given up (at most a minute).
                _ = released.wait(timeout: .now() + 60)
            }
        }
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                holding.wait()
                continuation.resume()
            }
        }
        let refused: (any Error)?
        do {
            _ = try await other.createAccount(id: "acc_other", displayName: "Other", currency: .usd)
            refused = nil
        } catch {
            refused = error
        }
        let description = refused.map { "\($0)" } ?? "the write went through while another instance held the lock"
        if case .storage(_, let retryable)? = refused as? BillingError {
            #expect(retryable, "\(description)")
        } else {
            Issue.record("not a storage error: \(description)")
        }
        #expect(description.contains("55P03"), "\(description)")
        released.signal()
        try await stalled.value
        // Afterwards the other instance writes again.
        _ = try await other.createAccount(id: "acc_other", displayName: "Other", currency: .usd)
    }

    /// The ledger, the event log, the audit trail and invoices refuse
    /// UPDATE, DELETE and TRUNCATE on PostgreSQL too (triggers), and a
    /// ledger key or a default method cannot be taken twice.
    @Test func theSchemaKeepsTheRulesOnPostgreSQL() async throws {
        let f = try await StoreFixture(.postgres)
        let payment = try await f.topUp("3.00", .invoice)
        _ = try await f.store.transition(paymentID: payment.id, .paid)
        for statement in [
            "UPDATE ledger SET amount_minor = 1", "DELETE FROM ledger", "TRUNCATE ledger",
            "UPDATE events SET kind = 'x'", "DELETE FROM events", "TRUNCATE events CASCADE",
            "DELETE FROM audit_log", "UPDATE invoices SET amount_minor = 1",
            "INSERT INTO ledger (account_id, amount_minor, currency, entry_key, payment_id, reference, created_at_ms) SELECT account_id, 1, currency, entry_key, payment_id, reference, created_at_ms FROM ledger",
        ] {
            await #expect(throws: BillingError.self, "\(statement)") {
                _ = try await f.store.write { db in try db.execute(statement) }
            }
        }
        #expect(try await f.balanceMinor() == 3_00)
        #expect(try await f.checkInvariants() == [])
    }

    /// Three pollers claiming at once never get the same payment, and
    /// between them claim every due one.
    @Test func claimsOnThreeInstancesNeverOverlap() async throws {
        let f = try await StoreFixture(.postgres)
        let instances: [any SQLStore] = [f.store, try await f.sibling(), try await f.sibling()]
        var ids: Set<String> = []
        for _ in 0..<60 {
            ids.insert(try await f.topUp("1.00").id)
        }
        // Sandbox payments are due at once (never started here).
        let claims = try await withThrowingTaskGroup(of: [String].self) { group in
            for (index, store) in instances.enumerated() {
                group.addTask {
                    var mine: [String] = []
                    while true {
                        let claimed = try await store.claimDuePayments(
                            owner: "instance-\(index)",
                            limit: 7,
                            lease: .seconds(3600)
                        )
                        if claimed.isEmpty { return mine }
                        mine += claimed.map(\.id)
                    }
                }
            }
            var all: [String] = []
            for try await mine in group { all += mine }
            return all
        }
        #expect(claims.count == Set(claims).count, "a payment was claimed twice")
        #expect(Set(claims) == ids)
        // An instance that dies: its leases run out and another takes over.
        f.clock.advance(by: .seconds(3601))
        let retaken = try await instances[1].claimDuePayments(owner: "instance-1", limit: 100, lease: .seconds(60))
        #expect(Set(retaken.map(\.id)) == ids)
    }
}

private final class Counter: Sendable {
    let value = Atomic<Int>(0)
}
