import BillingAPI
import BillingMessages
import BillingRPC
import Foundation
import Testing

/// billingd stopped between a payment's creation and its payment: the data,
/// the sandbox's state and the poller's work are all in files; the new
/// process finishes the job and a watcher resumes after its cursor.
@Suite struct RestartTests {
    @Test func aRestartLosesNothing() async throws {
        // Slow enough that the first process does not see the payment paid
        // before it stops, even on a loaded machine.
        let first = try await ServerFixture(pollSeconds: 5)
        let directory = first.directory
        let (account, payer) = try await first.account("acc-restart")
        let accountCertificate = try first.accountCertificate(account.id)
        let client = try first.clients(accountCertificate)
        let created = try await client.balance.createTopUp(
            topUpRequest(
                account: account.id,
                payer: payer.id,
                minor: 77_00,
                option: .system(.sandbox, save: true)
            )
        )
        var watch = BillingV1.WatchPaymentsRequest()
        watch.accountId = account.id
        var cursor: UInt64 = 0
        for try await event in try await client.balance.watchPayments(watch) {
            cursor = event.sequence
            if case .methodStatusChanged? = event.event { break }
        }
        // The poller's first look (right after creation) saw it unpaid; the
        // next is 5 s away. The person pays now, and billingd stops before
        // that next look.
        _ = try await first.waitForPayment(created.payment!.id, client: client.balance) { $0.checkAttempts >= 1 }
        _ = try await first.press(created.redirectUrl, approve: true)
        var get = BillingV1.GetPaymentRequest()
        get.paymentId = created.payment!.id
        let beforeStop = try await client.balance.getPayment(get)
        await first.stop(removeData: false)
        // Only meaningful if the first process had not finished it already.
        try #require(beforeStop.status == .new)

        let second = try await ServerFixture(pollSeconds: 0.2, directory: directory) { configuration in
            configuration.sandbox.port = 0
        }
        let client2 = try second.clients(accountCertificate)
        let paid = try await second.waitForPayment(created.payment!.id, client: client2.balance, within: .seconds(120))
        { $0.status == .paid }
        #expect(paid.status == .paid, "the restarted poller finished the job")

        // The watcher resumes after the last sequence it saw, missing nothing.
        watch.afterSequence = cursor
        var resumed: [BillingV1.PaymentEvent] = []
        for try await event in try await client2.balance.watchPayments(watch) {
            resumed.append(event)
            if case .methodStatusChanged(let changed)? = event.event, changed.method?.status == .confirmed { break }
        }
        #expect(resumed.first?.sequence == cursor + 1)
        #expect(
            resumed.contains {
                if case .paymentStatusChanged(let c)? = $0.event {
                    return c.payment?.status == .paid
                } else {
                    return false
                }
            }
        )
        var balance = BillingV1.GetBalanceRequest()
        balance.accountId = account.id
        #expect(try await client2.balance.getBalance(balance).balance?.amountMinorUnits == 77_00)
        await second.stop()
    }
}
