import BillingAPI
import BillingMessages
import BillingRPC
import Testing

/// Renewals and migration orders, paid from the balance and through a payment.
@Suite struct OrdersEndToEndTests {
    func fund(_ f: ServerFixture, _ account: String, _ payer: String, _ minor: Int64) async throws {
        var settle = BillingV1.SettleInvoiceRequest()
        settle.paymentId = try await f.clients("internal").balance.createTopUp(
            topUpRequest(account: account, payer: payer, minor: minor, option: .invoice)
        ).payment!.id
        _ = try await f.clients("operator").balance.settleInvoice(settle)
    }

    @Test func renewalFromTheBalanceAndThroughASandboxPayment() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-renew")
        let internalClient = try f.clients("internal")
        var service = BillingV1.RenewableService()
        service.id = "svc-vps-1"
        service.accountId = account.id
        service.displayName = "VPS 1"
        service.pricePerPeriod = .usd(12_00)
        service.periodDays = 30
        service.expiresAtUnixMs = 2_000_000_000_000
        var upsert = BillingV1.UpsertRenewableServiceRequest()
        upsert.service = service
        _ = try await internalClient.renewal.upsertRenewableService(upsert)

        let client = try f.clients(try f.accountCertificate(account.id))
        var item = BillingV1.RenewalItem()
        item.serviceId = service.id
        item.periods = 2
        var quote = BillingV1.QuoteRenewalRequest()
        quote.accountId = account.id
        quote.items = [item]
        let quoted = try await client.renewal.quoteRenewal(quote)
        #expect(quoted.total?.amountMinorUnits == 24_00)

        var renew = BillingV1.RenewRequest()
        renew.accountId = account.id
        renew.items = [item]
        renew.option = .balance
        renew.expectedTotal = quoted.total
        do {
            _ = try await client.renewal.renew(renew)
            Issue.record("renewed with no money")
        } catch let error as RPCError {
            #expect(error.code == .failedPrecondition)
            #expect(error.message.contains("insufficient funds"))
        }
        try await fund(f, account.id, payer.id, 30_00)
        let fromBalance = try await client.renewal.renew(renew)
        #expect(fromBalance.order?.status == .completed)
        #expect(fromBalance.payment == nil)
        var balance = BillingV1.GetBalanceRequest()
        balance.accountId = account.id
        #expect(try await client.balance.getBalance(balance).balance?.amountMinorUnits == 6_00)

        renew.option = .system(.sandbox)
        renew.payerId = payer.id
        // The balance's 6.00 first: the payment is for the other 18.00, and
        // the 6.00 is held (not spendable elsewhere) until the payment ends.
        let throughPayment = try await client.renewal.renew(renew)
        #expect(throughPayment.order?.status == .awaitingPayment)
        #expect(throughPayment.order?.fromBalance?.amountMinorUnits == 6_00)
        #expect(throughPayment.payment?.amount?.amountMinorUnits == 18_00)
        let holding = try await client.balance.getBalance(balance)
        #expect(holding.balance?.amountMinorUnits == 6_00)
        #expect(holding.held?.amountMinorUnits == 6_00)
        #expect(holding.available?.amountMinorUnits == 0)
        _ = try await f.press(throughPayment.redirectUrl, approve: true)
        _ = try await f.waitForPayment(throughPayment.payment!.id, client: client.balance) { $0.status == .paid }
        var get = BillingV1.GetRenewalOrderRequest()
        get.orderId = throughPayment.order!.id
        #expect(try await client.renewal.getRenewalOrder(get).status == .completed)
        let after = try await client.balance.getBalance(balance)
        #expect(after.balance?.amountMinorUnits == 0, "18.00 credited, then one debit of 24.00")
        #expect(after.held?.amountMinorUnits == 0)
        var list = BillingV1.ListRenewableServicesRequest()
        list.accountId = account.id
        #expect(
            try await client.renewal.listRenewableServices(list).services.first?.expiresAtUnixMs == 2_000_000_000_000
                + 4 * 30 * 86_400_000
        )
        await f.stop()
    }

    @Test func migrationOrderPaidOnceFromTheBalanceOrThroughAPayment() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-mig")
        let internalClient = try f.clients("internal")
        var create = BillingV1.CreateMigrationOrderRequest()
        create.accountId = account.id
        create.externalId = "migration-77"
        create.description = "Server for migration 77"
        create.serverPrice = .usd(45_00)
        let order = try await internalClient.migration.createMigrationOrder(create)
        #expect(order.status == .awaitingPayment)

        let client = try f.clients(try f.accountCertificate(account.id))
        var pay = BillingV1.PayMigrationOrderRequest()
        pay.orderId = order.id
        pay.payerId = payer.id
        pay.option = .system(.sandbox)
        let started = try await client.migration.payMigrationOrder(pay)
        #expect(started.order?.status == .paymentPending)
        do {
            _ = try await client.migration.payMigrationOrder(pay)
            Issue.record("paid an order twice")
        } catch let error as RPCError {
            #expect(error.code == .failedPrecondition)
        }
        _ = try await f.press(started.redirectUrl, approve: true)
        _ = try await f.waitForPayment(started.payment!.id, client: client.balance) { $0.status == .paid }
        var get = BillingV1.GetMigrationOrderRequest()
        get.orderId = order.id
        #expect(try await client.migration.getMigrationOrder(get).status == .paid)

        create.externalId = "migration-78"
        let second = try await internalClient.migration.createMigrationOrder(create)
        try await fund(f, account.id, payer.id, 50_00)
        var fromBalance = BillingV1.PayMigrationOrderRequest()
        fromBalance.orderId = second.id
        fromBalance.option = .balance
        let key = CallOptions().idempotencyKey("pay-78")
        let paid = try await client.migration.payMigrationOrder(fromBalance, options: key)
        #expect(paid.order?.status == .paid)
        let again = try await client.migration.payMigrationOrder(fromBalance, options: key)
        #expect(again.order?.status == .paid, "a retry with the key returns the first result")
        var balance = BillingV1.GetBalanceRequest()
        balance.accountId = account.id
        #expect(try await client.balance.getBalance(balance).balance?.amountMinorUnits == 5_00)
        await f.stop()
    }
}
