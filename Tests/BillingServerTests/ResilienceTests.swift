import BillingAPI
import BillingMessages
import BillingRPC
import Foundation
import Testing

/// The payment system slow or down; a watcher too far behind.
@Suite struct ResilienceTests {
    @Test func aRetryWithTheSameKeyStartsThePaymentOnceTheSandboxIsBack() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-outage")
        let client = try f.clients(try f.accountCertificate(account.id))
        f.application.sandbox!.behaviour.unavailable = true
        let request = topUpRequest(account: account.id, payer: payer.id, minor: 40_00, option: .system(.sandbox))
        let options = CallOptions().idempotencyKey("retry-me")
        do {
            _ = try await client.balance.createTopUp(request, options: options)
            Issue.record("created while the payment system was down")
        } catch let error as RPCError {
            #expect(error.code == .unavailable)
            #expect(error.message.contains("retry with the same idempotency key"))
        }
        f.application.sandbox!.behaviour.unavailable = false
        let retried = try await client.balance.createTopUp(request, options: options)
        #expect(retried.redirectUrl.hasPrefix("http://127.0.0.1:"))
        var list = BillingV1.ListPaymentsRequest()
        list.accountId = account.id
        #expect(try await client.balance.listPayments(list).payments.count == 1)
        await f.stop()
    }

    @Test func aSlowPaymentSystemMakesCallsSlowNotWrong() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-slow")
        let client = try f.clients(try f.accountCertificate(account.id))
        f.application.sandbox!.behaviour.latency = .milliseconds(300)
        let start = ContinuousClock.now
        let created = try await client.balance.createTopUp(
            topUpRequest(account: account.id, payer: payer.id, minor: 40_00, option: .system(.sandbox))
        )
        #expect(ContinuousClock.now - start >= .milliseconds(300))
        #expect(created.payment?.status == .new)
        // A caller with a shorter deadline gets DEADLINE_EXCEEDED, and its retry finds the same payment.
        do {
            _ = try await client.balance.createTopUp(
                topUpRequest(account: account.id, payer: payer.id, minor: 41_00, option: .system(.sandbox)),
                options: CallOptions(timeout: .milliseconds(100)).idempotencyKey("slow-1")
            )
            Issue.record("beat the deadline")
        } catch let error as RPCError {
            #expect(error.code == .deadlineExceeded)
        }
        f.application.sandbox!.behaviour.latency = .zero
        let again = try await client.balance.createTopUp(
            topUpRequest(account: account.id, payer: payer.id, minor: 41_00, option: .system(.sandbox)),
            options: CallOptions().idempotencyKey("slow-1")
        )
        #expect(again.payment?.amount?.amountMinorUnits == 41_00)
        var list = BillingV1.ListPaymentsRequest()
        list.accountId = account.id
        #expect(try await client.balance.listPayments(list).payments.count == 2)
        await f.stop()
    }

    @Test func aWatcherTooFarBehindIsEndedAndResumesFromItsCursor() async throws {
        let f = try await ServerFixture { configuration in
            configuration.limits.maxSubscriberLagEvents = 300
        }
        let (account, payer) = try await f.account("acc-lag")
        let internalClient = try f.clients("internal")
        for _ in 0..<200 {
            _ = try await internalClient.balance.createTopUp(
                topUpRequest(account: account.id, payer: payer.id, minor: 1_00, option: .invoice)
            )
        }
        // 200 invoices made 200 events for this account; 300 allowed: fine from 0.
        var watch = BillingV1.WatchPaymentsRequest()
        watch.accountId = account.id
        var count = 0
        var cursor: UInt64 = 0
        for try await event in try await internalClient.balance.watchPayments(watch) {
            count += 1
            cursor = event.sequence
            if count == 200 { break }
        }
        #expect(count == 200)
        for _ in 0..<400 {
            _ = try await internalClient.balance.createTopUp(
                topUpRequest(account: account.id, payer: payer.id, minor: 1_00, option: .invoice)
            )
        }
        // From the old cursor it is 400 behind: ended with a clear status.
        watch.afterSequence = cursor
        do {
            for try await _ in try await internalClient.balance.watchPayments(watch) {}
            Issue.record("a watcher 400 events behind was served")
        } catch let error as RPCError {
            #expect(error.code == .resourceExhausted)
            #expect(error.message.contains("resume after sequence \(cursor)"))
        }
        await f.stop()
    }

    @Test func internalServicesWatchEveryAccount() async throws {
        let f = try await ServerFixture()
        let (a, payerA) = try await f.account("acc-all-a")
        let (b, payerB) = try await f.account("acc-all-b")
        let internalClient = try f.clients("internal")
        _ = try await internalClient.balance.createTopUp(
            topUpRequest(account: a.id, payer: payerA.id, minor: 1_00, option: .invoice)
        )
        _ = try await internalClient.balance.createTopUp(
            topUpRequest(account: b.id, payer: payerB.id, minor: 1_00, option: .invoice)
        )
        var accounts: Set<String> = []
        for try await event in try await internalClient.balance.watchAllPayments(BillingV1.WatchAllPaymentsRequest()) {
            accounts.insert(event.accountId)
            if accounts.count == 2 { break }
        }
        #expect(accounts == [a.id, b.id])
        await f.stop()
    }
}
