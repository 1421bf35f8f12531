import BillingAPI
import BillingMessages
import BillingRPC
import Foundation
import Testing

/// Regressions of the money-and-security review: each test failed before its
/// fix. A whole billingd on loopback, as callers and attackers reach it.
@Suite struct MoneySafetyTests {
    /// A confirmed sandbox card for the account's payer, made as a person
    /// would: a hosted top-up with "save", Pay pressed, the poller.
    static func savedCard(_ f: ServerFixture, account: String, payer: String) async throws -> String {
        let client = try f.clients("internal")
        let created = try await client.balance.createTopUp(
            topUpRequest(
                account: account,
                payer: payer,
                minor: 10_00,
                option: .system(.sandbox, save: true)
            )
        )
        _ = try await f.press(created.redirectUrl, approve: true)
        let paid = try await f.waitForPayment(created.payment!.id, client: client.balance, within: .seconds(60)) {
            $0.status == .paid
        }
        try #require(paid.status == .paid)
        return paid.savedPaymentMethodId
    }

    static func balance(_ f: ServerFixture, _ account: String) async throws -> Int64 {
        var request = BillingV1.GetBalanceRequest()
        request.accountId = account
        return try await f.clients("internal").balance.getBalance(request).balance?.amountMinorUnits ?? -1
    }

    static func expectCode(_ code: StatusCode, _ what: String, _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("\(what) succeeded; expected \(code)")
        } catch let error as RPCError {
            #expect(error.code == code, "\(what): \(error)")
        } catch {
            Issue.record("\(what): \(error)")
        }
    }

    @Test func cancellingASavedMethodPaymentWhoseChargeIsInFlightIsRefusedAndTheChargeIsCredited() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-inflight")
        let method = try await Self.savedCard(f, account: account.id, payer: payer.id)
        let client = try f.clients("internal")
        // Every sandbox call now takes 2 s: the charge is in flight while we cancel.
        f.application.sandbox!.behaviour.latency = .seconds(2)
        let charging = Task {
            try await client.balance.createTopUp(
                topUpRequest(account: account.id, payer: payer.id, minor: 25_00, option: .saved(method))
            )
        }
        var list = BillingV1.ListPaymentsRequest()
        list.accountId = account.id
        var inFlight: BillingV1.Payment?
        while inFlight == nil {
            inFlight = try await client.balance.listPayments(list).payments.first {
                $0.amount?.amountMinorUnits == 25_00
            }
            if inFlight == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        var cancel = BillingV1.CancelPaymentRequest()
        cancel.paymentId = inFlight!.id
        // In flight: "being charged"; on a machine so slow the charge already
        // answered: "Paid, not New". Never Cancelled.
        await Self.expectCode(.failedPrecondition, "CancelPayment during the charge") {
            _ = try await client.balance.cancelPayment(cancel)
        }
        let answered = try await charging.value
        #expect(answered.payment?.status == .paid)
        let final = try await f.waitForPayment(inFlight!.id, client: client.balance, within: .seconds(30)) {
            $0.status != .new
        }
        #expect(final.status == .paid, "the charge succeeded at the sandbox, so the payment is Paid")
        #expect(try await Self.balance(f, account.id) == 35_00, "both charges credited")
        await f.stop()
    }

    @Test func aSavedMethodPaymentWithNoAnswerFromThePaymentSystemCannotBeCancelledAndIsCreditedLater() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-noanswer")
        let method = try await Self.savedCard(f, account: account.id, payer: payer.id)
        let client = try f.clients("internal")
        // The charge gets no answer: it may or may not have happened.
        f.application.sandbox!.behaviour.unavailable = true
        await Self.expectCode(.unavailable, "CreateTopUp while the sandbox is down") {
            _ = try await client.balance.createTopUp(
                topUpRequest(account: account.id, payer: payer.id, minor: 7_00, option: .saved(method))
            )
        }
        var list = BillingV1.ListPaymentsRequest()
        list.accountId = account.id
        let pending = try #require(
            try await client.balance.listPayments(list).payments.first { $0.amount?.amountMinorUnits == 7_00 }
        )
        #expect(pending.status == .new)
        var cancel = BillingV1.CancelPaymentRequest()
        cancel.paymentId = pending.id
        await Self.expectCode(.failedPrecondition, "CancelPayment with no answer") {
            _ = try await client.balance.cancelPayment(cancel)
        }
        #expect(
            try await f.waitForPayment(pending.id, client: client.balance, within: .zero) { _ in true }.status == .new
        )
        // The payment system answers again: the poller asks under the same key and credits.
        f.application.sandbox!.behaviour.unavailable = false
        let final = try await f.waitForPayment(pending.id, client: client.balance, within: .seconds(60)) {
            $0.status != .new
        }
        #expect(final.status == .paid)
        #expect(try await Self.balance(f, account.id) == 17_00)
        await f.stop()
    }

    @Test func anExpiryNearTheEndOfInt64IsRefusedAndAStoredOneIsAnErrorNotACrash() async throws {
        let f = try await ServerFixture()
        let (account, _) = try await f.account("acc-overflow")
        let client = try f.clients("internal")
        var service = BillingV1.RenewableService()
        service.id = "svc-far"
        service.accountId = account.id
        service.displayName = "Far"
        service.pricePerPeriod = .usd(1_00)
        service.periodDays = 3660
        var upsert = BillingV1.UpsertRenewableServiceRequest()
        for bad in [Int64(9_223_372_036_854_775_000), -1, 0, 253_402_300_800_000, Int64.min] {
            service.expiresAtUnixMs = bad
            upsert.service = service
            await Self.expectCode(.invalidArgument, "expiry \(bad)") {
                _ = try await client.renewal.upsertRenewableService(upsert)
            }
        }
        // The last valid instant: renewing it would pass the year 9999.
        service.expiresAtUnixMs = 253_402_300_799_999
        upsert.service = service
        _ = try await client.renewal.upsertRenewableService(upsert)
        var item = BillingV1.RenewalItem()
        item.serviceId = service.id
        item.periods = 120
        var quote = BillingV1.QuoteRenewalRequest()
        quote.accountId = account.id
        quote.items = [item]
        await Self.expectCode(.failedPrecondition, "QuoteRenewal past 9999") {
            _ = try await client.renewal.quoteRenewal(quote)
        }

        // A row an older version stored: an error for the call, never a trap.
        let script =
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE renewable_services SET expires_at_ms = 9223372036854775000 WHERE id = 'svc-far'\"); c.commit()"
        let result = await Executable.run("/usr/bin/python3", ["-c", script, f.configuration.resolvedDatabasePath])
        #expect(result.status == 0, "\(result.stderr)")
        await Self.expectCode(.failedPrecondition, "QuoteRenewal of a stored far expiry") {
            _ = try await client.renewal.quoteRenewal(quote)
        }
        var renew = BillingV1.RenewRequest()
        renew.accountId = account.id
        renew.items = [item]
        renew.option = .balance
        await Self.expectCode(.failedPrecondition, "Renew of a stored far expiry") {
            _ = try await client.renewal.renew(renew)
        }
        #expect(try await Self.balance(f, account.id) == 0, "billingd still serves")
        await f.stop()
    }

    @Test func aReturnURLWithALineBreakIsRefusedEverywhereAndChangesNothing() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-url")
        let client = try f.clients("internal")
        for url in [
            "https://panel.example/\r\nX-Evil: 1", "https://panel.example/ a", "https://panel.example/\u{202E}x",
            String(repeating: "h", count: 3000),
        ] {
            await Self.expectCode(.invalidArgument, "CreateTopUp \(url.debugDescription.prefix(40))") {
                _ = try await client.balance.createTopUp(
                    topUpRequest(
                        account: account.id,
                        payer: payer.id,
                        minor: 10_00,
                        option: .system(.sandbox, returnURL: url)
                    )
                )
            }
        }
        var list = BillingV1.ListPaymentsRequest()
        list.accountId = account.id
        #expect(try await client.balance.listPayments(list).payments.isEmpty)
        await f.stop()
    }

    @Test func notificationsArePagedToTheLastOneAndTokensAreBounded() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-ntf")
        let client = try f.clients("internal")
        let operatorClient = try f.clients("operator")
        // 205 cancelled invoices: 205 error notifications, more than one page.
        for _ in 0..<205 {
            var cancel = BillingV1.CancelInvoiceRequest()
            cancel.paymentId = try await client.balance.createTopUp(
                topUpRequest(
                    account: account.id,
                    payer: payer.id,
                    minor: 10_00,
                    option: .invoice
                )
            ).payment!.id
            _ = try await operatorClient.balance.cancelInvoice(cancel)
        }
        var request = BillingV1.ListNotificationsRequest()
        request.accountId = account.id
        var page = BillingV1.PageRequest()
        page.pageSize = 200
        request.page = page
        var seen: [String] = []
        while true {
            let response = try await client.balance.listNotifications(request)
            seen += response.notifications.map(\.id)
            if response.nextPageToken.isEmpty { break }
            request.page?.pageToken = response.nextPageToken
        }
        #expect(seen.count == 205)
        #expect(Set(seen).count == 205, "no notification twice")
        request.page?.pageToken = String(repeating: "9", count: 10_000)
        await Self.expectCode(.invalidArgument, "a 10,000-character notifications token") {
            _ = try await client.balance.listNotifications(request)
        }
        var services = BillingV1.ListRenewableServicesRequest()
        services.accountId = account.id
        var servicePage = BillingV1.PageRequest()
        servicePage.pageToken = String(repeating: "9", count: 10_000)
        services.page = servicePage
        await Self.expectCode(.invalidArgument, "a 10,000-character services token") {
            _ = try await client.renewal.listRenewableServices(services)
        }
        await f.stop()
    }

    @Test func accountsAreOnlyInConfiguredCurrenciesAndEachFollowsItsOwnLimits() async throws {
        let f = try await ServerFixture { configuration in
            configuration.currencies = ["EUR": .init(minimum: "1.00", maximum: "9000.00", presets: ["50", "100"])]
        }
        let client = try f.clients("internal")
        var create = BillingV1.CreateAccountRequest()
        create.accountId = "acc-jpy"
        create.displayName = "Yen"
        create.currency = "JPY"
        await Self.expectCode(.invalidArgument, "a JPY account when only USD and EUR are offered") {
            _ = try await client.accounts.createAccount(create)
        }
        create.accountId = "acc-eur"
        create.currency = "EUR"
        _ = try await client.accounts.createAccount(create)
        var payerRequest = BillingV1.CreatePayerRequest()
        payerRequest.accountId = "acc-eur"
        payerRequest.displayName = "Euro payer"
        let payer = try await client.accounts.createPayer(payerRequest)

        var options = BillingV1.GetTopUpOptionsRequest()
        options.accountId = "acc-eur"
        let shown = try await client.balance.getTopUpOptions(options)
        #expect(shown.minAmount?.currency == "EUR" && shown.minAmount?.amountMinorUnits == 1_00)
        #expect(shown.maxAmount?.amountMinorUnits == 9000_00)
        #expect(shown.presets.map(\.amountMinorUnits) == [50_00, 100_00])
        #expect(shown.systemLimits.map(\.minAmount?.currency) == ["EUR"], "the sandbox's limits, in euros")

        func euros(_ minor: Int64) -> BillingV1.CreateTopUpRequest {
            var request = topUpRequest(account: "acc-eur", payer: payer.id, minor: minor, option: .invoice)
            request.amount?.currency = "EUR"
            return request
        }
        let paid = try await client.balance.createTopUp(euros(25_00))
        #expect(paid.payment?.amount?.currency == "EUR")
        do {
            _ = try await client.balance.createTopUp(euros(9000_01))
            Issue.record("above the EUR maximum")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("9000.00 EUR"), "\(error.message)")
        }
        await Self.expectCode(.invalidArgument, "USD on an EUR account") {
            _ = try await client.balance.createTopUp(
                topUpRequest(account: "acc-eur", payer: payer.id, minor: 25_00, option: .invoice)
            )
        }
        await f.stop()
    }

    @Test func renewalsAndMigrationsThroughAPaymentSystemStayWithinItsLimits() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-sys-limits")
        let client = try f.clients("internal")
        var service = BillingV1.RenewableService()
        service.id = "svc-cent"
        service.accountId = account.id
        service.displayName = "One cent"
        service.pricePerPeriod = .usd(1)
        service.periodDays = 30
        service.expiresAtUnixMs = 2_000_000_000_000
        var upsert = BillingV1.UpsertRenewableServiceRequest()
        upsert.service = service
        _ = try await client.renewal.upsertRenewableService(upsert)
        var item = BillingV1.RenewalItem()
        item.serviceId = service.id
        item.periods = 1
        var renew = BillingV1.RenewRequest()
        renew.accountId = account.id
        renew.payerId = payer.id
        renew.items = [item]
        renew.option = .system(.sandbox)
        // Below the Sandbox's minimum the payment is the minimum, the excess credited, as quoted.
        var quote = BillingV1.QuoteRenewalRequest()
        quote.accountId = account.id
        quote.items = [item]
        quote.option = renew.option
        let quoted = try await client.renewal.quoteRenewal(quote)
        #expect(quoted.toPay?.amountMinorUnits == 50 && quoted.credited?.amountMinorUnits == 49)
        #expect(quoted.note.contains("at least 0.50 USD"), "\(quoted.note)")
        let cent = try await client.renewal.renew(renew)
        #expect(cent.payment?.amount?.amountMinorUnits == 50, "never a 0.01 USD payment at the payment system")
        var order = BillingV1.CreateMigrationOrderRequest()
        order.accountId = account.id
        order.externalId = "m-huge"
        order.serverPrice = .usd(10_000_000_00)
        let created = try await client.migration.createMigrationOrder(order)
        var pay = BillingV1.PayMigrationOrderRequest()
        pay.orderId = created.id
        pay.payerId = payer.id
        pay.option = .system(.sandbox)
        do {
            _ = try await client.migration.payMigrationOrder(pay)
            Issue.record("a 10,000,000 USD migration went to the payment system")
        } catch let error as RPCError {
            #expect(error.code == .failedPrecondition)
            #expect(error.message.contains("maximum"), "\(error.message)")
        }
        var list = BillingV1.ListPaymentsRequest()
        list.accountId = account.id
        #expect(
            try await client.balance.listPayments(list).payments.map(\.id) == [cent.payment?.id ?? ""],
            "nothing recorded for the refused migration"
        )
        await f.stop()
    }

    @Test func theSandboxPageSaysWhatHappenedWhenPressedAgainOrAfterACancel() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-page")
        let client = try f.clients("internal")
        let paid = try await client.balance.createTopUp(
            topUpRequest(account: account.id, payer: payer.id, minor: 10_00, option: .system(.sandbox))
        )
        #expect(try await f.press(paid.redirectUrl, approve: true).status == 303)
        #expect(
            try await f.waitForPayment(paid.payment!.id, client: client.balance, within: .seconds(60)) {
                $0.status == .paid
            }.status == .paid
        )
        let again = try await f.pressPage(paid.redirectUrl, approve: false)
        #expect(again.status == 409)
        #expect(again.body.contains("already paid"), "\(again.body)")

        let cancelled = try await client.balance.createTopUp(
            topUpRequest(account: account.id, payer: payer.id, minor: 11_00, option: .system(.sandbox))
        )
        var cancel = BillingV1.CancelPaymentRequest()
        cancel.paymentId = cancelled.payment!.id
        cancel.reason = "changed my mind"
        #expect(try await client.balance.cancelPayment(cancel).status == .cancelled)
        let late = try await f.pressPage(cancelled.redirectUrl, approve: true)
        #expect(late.status == 409)
        #expect(late.body.contains("cancelled or expired before it was paid"), "\(late.body)")
        #expect(try await Self.balance(f, account.id) == 10_00, "the late Pay took nothing")
        // The person's own cancel is not a failure.
        var notifications = BillingV1.ListNotificationsRequest()
        notifications.accountId = account.id
        let told = try #require(try await client.balance.listNotifications(notifications).notifications.first)
        #expect(told.severity == .info, "\(told)")
        #expect(told.title == "Cancelled by you")
        #expect(told.body.contains("changed my mind"))
        await f.stop()
    }

    @Test func aSandboxThatCannotRecordFailsTheCallInsteadOfForgetting() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-sbx-broken")
        let client = try f.clients("internal")
        // Its records become unwritable (here: their table is gone).
        let script = "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('DROP TABLE payments'); c.commit()"
        let result = await Executable.run("/usr/bin/python3", ["-c", script, f.directory + "/sandbox.sqlite"])
        #expect(result.status == 0, "\(result.stderr)")
        await Self.expectCode(.unavailable, "a top-up the sandbox cannot record") {
            _ = try await client.balance.createTopUp(
                topUpRequest(account: account.id, payer: payer.id, minor: 10_00, option: .system(.sandbox))
            )
        }
        await f.stop()
    }
}
