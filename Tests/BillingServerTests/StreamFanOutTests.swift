import BillingAPI
import BillingMessages
import BillingRPC
import Foundation
import Testing

@testable import BillingServer

/// Watchers cost a write nothing unless the write concerns them, and a
/// stopping billingd ends every watch at once with where to resume.
@Suite struct StreamFanOutTests {
    static func watch(
        _ client: BillingV1.BalanceClient,
        _ account: String
    ) async throws -> Task<[BillingV1.PaymentEvent], any Error> {
        var request = BillingV1.WatchPaymentsRequest()
        request.accountId = account
        let events = try await client.watchPayments(request)
        return Task {
            var seen: [BillingV1.PaymentEvent] = []
            for try await event in events { seen.append(event) }
            return seen
        }
    }

    @Test func aWriteWakesOnlyTheWatchersOfItsAccount() async throws {
        let f = try await ServerFixture()
        let (busy, payer) = try await f.account("acc-busy")
        let (idle, _) = try await f.account("acc-idle")
        let hub = f.application.hub
        // 300 idle watchers of another account, over three connections.
        var idleWatchers: [Task<[BillingV1.PaymentEvent], any Error>] = []
        for connection in 0..<3 {
            let client = try f.clients("internal").balance
            for _ in 0..<100 { idleWatchers.append(try await Self.watch(client, idle.id)) }
            _ = connection
        }
        let busyWatcher = try await Self.watch(try f.clients("internal").balance, busy.id)
        // Every watcher is caught up and registered with the hub.
        let registered = ContinuousClock.now.advanced(by: .seconds(120))
        while hub.subscriberCount < 301, ContinuousClock.now < registered {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(hub.subscriberCount == 301)
        let deliveredBefore = hub.delivered.load(ordering: .relaxed)

        let client = try f.clients("internal").balance
        var created: [String] = []
        for _ in 0..<5 {
            created.append(
                try await client.createTopUp(
                    topUpRequest(account: busy.id, payer: payer.id, minor: 10_00, option: .invoice)
                ).payment!.id
            )
        }
        // The busy account's watcher sees its five payments…
        let seen = ContinuousClock.now.advanced(by: .seconds(60))
        while hub.delivered.load(ordering: .relaxed) - deliveredBefore < 5, ContinuousClock.now < seen {
            try await Task.sleep(for: .milliseconds(20))
        }
        // …and nothing of them went to a watcher of the other account.
        #expect(
            hub.delivered.load(ordering: .relaxed) - deliveredBefore == 5,
            "one delivery per event, to its account's one watcher"
        )
        for watcher in idleWatchers { watcher.cancel() }
        busyWatcher.cancel()
        await f.stop()
    }

    @Test func stoppingBillingdEndsWatchesAtOnceWithWhereToResume() async throws {
        // A grace period longer than the test: a watch left to it would end
        // with the transport's "shut down before the call finished" instead.
        let f = try await ServerFixture { $0.limits.shutdownGraceSeconds = 120 }
        let (account, payer) = try await f.account("acc-stop")
        let client = try f.clients("internal").balance
        let paid = try await client.createTopUp(
            topUpRequest(account: account.id, payer: payer.id, minor: 10_00, option: .invoice)
        ).payment!
        var request = BillingV1.WatchPaymentsRequest()
        request.accountId = account.id
        let events = try await client.watchPayments(request)
        var iterator = events.makeAsyncIterator()
        let first = try #require(try await iterator.next())
        #expect(first.sequence > 0)
        _ = paid
        let stopping = Task { await f.stop() }
        do {
            while try await iterator.next() != nil {}
            Issue.record("the watch ended without an error")
        } catch let error as RPCError {
            #expect(error.code == .unavailable, "\(error)")
            #expect(error.message.contains("resume after sequence"), "\(error.message)")
        }
        await stopping.value
    }
}
