import BillingAPI
import BillingMessages
import BillingRPC
import Foundation
import Testing

/// A whole top-up on one machine with no account anywhere: RPC over mutual
/// TLS, the sandbox page over loopback HTTP, the poller, a subscriber.
@Suite struct TopUpEndToEndTests {
    @Test func sandboxTopUpWithSavedMethodIsPaidOnceAndPushedToASubscriber() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-e2e-1")
        let client = try f.clients(try f.accountCertificate(account.id))

        // A subscriber from the start of the log.
        var watch = BillingV1.WatchPaymentsRequest()
        watch.accountId = account.id
        let events = try await client.balance.watchPayments(watch)
        let collector = Task {
            var seen: [BillingV1.PaymentEvent] = []
            for try await event in events {
                seen.append(event)
                if case .methodStatusChanged(let changed)? = event.event, changed.method?.status == .confirmed { break }
            }
            return seen
        }

        let created = try await client.balance.createTopUp(
            topUpRequest(
                account: account.id,
                payer: payer.id,
                minor: 100_50,
                option: .system(.sandbox, save: true)
            )
        )
        let payment = try #require(created.payment)
        #expect(payment.status == .new)
        #expect(created.redirectUrl.hasPrefix("http://127.0.0.1:"))
        #expect(!payment.savedPaymentMethodId.isEmpty)

        let pressed = try await f.press(created.redirectUrl, approve: true)
        #expect(pressed.status == 303)
        #expect(pressed.location == "https://panel.example/payments")

        let paid = try await f.waitForPayment(payment.id, client: client.balance) { $0.status == .paid }
        #expect(paid.status == .paid, "Paid within a few polls of 0.2 s")

        var balance = BillingV1.GetBalanceRequest()
        balance.accountId = account.id
        #expect(try await client.balance.getBalance(balance).balance?.amountMinorUnits == 100_50)

        var listMethods = BillingV1.ListPaymentMethodsRequest()
        listMethods.payerId = payer.id
        let methods = try await client.methods.listPaymentMethods(listMethods)
        #expect(methods.methods.map(\.status) == [.confirmed])
        #expect(methods.defaultMethodId == payment.savedPaymentMethodId)

        // Refreshing or a late poll changes nothing more.
        var refresh = BillingV1.RefreshPaymentRequest()
        refresh.paymentId = payment.id
        _ = try await client.balance.refreshPayment(refresh)
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await client.balance.getBalance(balance).balance?.amountMinorUnits == 100_50)

        let seen = try await collector.value
        let transitions = seen.compactMap { event -> String? in
            switch event.event {
            case .paymentStatusChanged(let changed)?:
                return "payment \(changed.previousStatus)->\(changed.payment?.status ?? .unspecified)"
            case .methodStatusChanged(let changed)?:
                return "method \(changed.previousStatus)->\(changed.method?.status ?? .unspecified)"
            case .balanceChanged(let changed)?: return "balance +\(changed.delta?.amountMinorUnits ?? 0)"
            default: return nil
            }
        }
        #expect(
            transitions == [
                "payment unspecified->new", "method unspecified->pending", "payment new->paid", "balance +10050",
                "method pending->confirmed",
            ]
        )
        #expect(seen.map(\.sequence) == Array(seen.first!.sequence...seen.last!.sequence), "gap-free")
        await f.stop()
    }

    @Test func theSandboxPageAnswersOtherMethods405AndUnknownPaths404() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-methods")
        let created = try await f.clients("internal").balance.createTopUp(
            topUpRequest(
                account: account.id,
                payer: payer.id,
                minor: 10_00,
                option: .system(.sandbox, save: false)
            )
        )
        let url = try #require(URL(string: created.redirectUrl))
        let port = try #require(url.port)
        func status(_ method: String, _ path: String) async throws -> String {
            let request =
                "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            let answer = try await RawHTTP.exchange(
                host: "127.0.0.1",
                port: port,
                request: request,
                group: f.clientGroup
            )
            return String(answer.prefix(12))
        }
        for method in ["GET", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"] {
            #expect(try await status(method, url.path + "/approve") == "HTTP/1.1 405", "\(method) approve")
        }
        for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
            #expect(try await status(method, url.path) == "HTTP/1.1 405", "\(method) page")
        }
        #expect(try await status("GET", "/elsewhere") == "HTTP/1.1 404")
        #expect(
            try await f.waitForPayment(created.payment!.id, client: f.clients("internal").balance) { $0.status == .new }
                .status == .new
        )
        await f.stop()
    }

    @Test func declinedTopUpIsCancelledWithANotificationAndTheMethodFailed() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-e2e-2")
        let client = try f.clients(try f.accountCertificate(account.id))
        let created = try await client.balance.createTopUp(
            topUpRequest(
                account: account.id,
                payer: payer.id,
                minor: 20_00,
                option: .system(.sandbox, save: true)
            )
        )
        _ = try await f.press(created.redirectUrl, approve: false)
        let cancelled = try await f.waitForPayment(created.payment!.id, client: client.balance) {
            $0.status == .cancelled
        }
        #expect(cancelled.status == .cancelled)
        #expect(cancelled.failureReason == "declined on the sandbox page")

        var notifications = BillingV1.ListNotificationsRequest()
        notifications.accountId = account.id
        let list = try await client.balance.listNotifications(notifications)
        #expect(list.notifications.count == 1)
        #expect(list.notifications.first?.severity == .error)

        var methods = BillingV1.ListPaymentMethodsRequest()
        methods.payerId = payer.id
        methods.includeRemoved = true
        #expect(try await client.methods.listPaymentMethods(methods).methods.map(\.status) == [.failed])
        var balance = BillingV1.GetBalanceRequest()
        balance.accountId = account.id
        #expect(try await client.balance.getBalance(balance).balance?.amountMinorUnits == 0)
        await f.stop()
    }

    @Test func savedMethodTopUpIsDebitedAtOnce() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-e2e-3")
        let client = try f.clients(try f.accountCertificate(account.id))
        let first = try await client.balance.createTopUp(
            topUpRequest(
                account: account.id,
                payer: payer.id,
                minor: 5_00,
                option: .system(.sandbox, save: true)
            )
        )
        _ = try await f.press(first.redirectUrl, approve: true)
        let paid = try await f.waitForPayment(first.payment!.id, client: client.balance) { $0.status == .paid }

        var options = BillingV1.GetTopUpOptionsRequest()
        options.accountId = account.id
        let topUpOptions = try await client.balance.getTopUpOptions(options)
        #expect(topUpOptions.payers.first?.defaultMethodId == paid.savedPaymentMethodId)
        #expect(topUpOptions.presets.map(\.amountMinorUnits) == [100_00, 200_00, 500_00, 1000_00])
        #expect(topUpOptions.minAmount?.amountMinorUnits == 50)
        #expect(topUpOptions.maxAmount?.amountMinorUnits == 15_000_00)

        let charged = try await client.balance.createTopUp(
            topUpRequest(
                account: account.id,
                payer: payer.id,
                minor: 200_00,
                option: .saved(paid.savedPaymentMethodId)
            )
        )
        #expect(charged.payment?.status == .paid, "no redirect, no poll: debited at once")
        #expect(charged.redirectUrl.isEmpty)
        var balance = BillingV1.GetBalanceRequest()
        balance.accountId = account.id
        #expect(try await client.balance.getBalance(balance).balance?.amountMinorUnits == 205_00)
        await f.stop()
    }

    @Test func invoiceIsSettledByAnOperatorOnly() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-e2e-4")
        let client = try f.clients(try f.accountCertificate(account.id))
        let invoice = try await client.balance.createTopUp(
            topUpRequest(account: account.id, payer: payer.id, minor: 1000_00, option: .invoice)
        )
        #expect(invoice.payment?.invoiceNumber.hasPrefix("INV-") == true)
        #expect(invoice.redirectUrl.isEmpty)

        var settle = BillingV1.SettleInvoiceRequest()
        settle.paymentId = invoice.payment!.id
        settle.reference = "bank transfer 42"
        for name in [try f.accountCertificate(account.id), "internal"] {
            do {
                _ = try await f.clients(name).balance.settleInvoice(settle)
                Issue.record("\(name) settled an invoice")
            } catch let error as RPCError {
                #expect(error.code == .permissionDenied)
            }
        }
        let settled = try await f.clients("operator").balance.settleInvoice(settle)
        #expect(settled.status == .paid)
        var balance = BillingV1.GetBalanceRequest()
        balance.accountId = account.id
        #expect(try await client.balance.getBalance(balance).balance?.amountMinorUnits == 1000_00)
        // Settling again changes nothing.
        #expect(try await f.clients("operator").balance.settleInvoice(settle).status == .paid)
        #expect(try await client.balance.getBalance(balance).balance?.amountMinorUnits == 1000_00)
        await f.stop()
    }

    @Test func theSameCreateWithTheSameIdempotencyKeyGivesOnePayment() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-e2e-5")
        let client = try f.clients(try f.accountCertificate(account.id))
        let request = topUpRequest(account: account.id, payer: payer.id, minor: 300_00, option: .system(.sandbox))
        let options = CallOptions().idempotencyKey("topup-7f3a")
        let first = try await client.balance.createTopUp(request, options: options)
        let second = try await client.balance.createTopUp(request, options: options)
        #expect(first.payment?.id == second.payment?.id)
        #expect(first.redirectUrl == second.redirectUrl)
        var other = request
        other.amount = .usd(301_00)
        do {
            _ = try await client.balance.createTopUp(other, options: options)
            Issue.record("the same key took a different request")
        } catch let error as RPCError {
            #expect(error.code == .failedPrecondition)
        }
        var list = BillingV1.ListPaymentsRequest()
        list.accountId = account.id
        #expect(try await client.balance.listPayments(list).payments.count == 1)
        await f.stop()
    }

    @Test func badTopUpsAreRefusedWithAClearStatusAndChangeNothing() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-e2e-6")
        let client = try f.clients(try f.accountCertificate(account.id))
        let cases: [(Int64, BillingV1.PaymentOption, StatusCode)] = [
            (0, .invoice, .invalidArgument), (49, .invoice, .invalidArgument), (15_000_01, .invoice, .invalidArgument),
            (-100, .invoice, .invalidArgument), (100_00, BillingV1.PaymentOption(), .invalidArgument),
            (100_00, .balance, .invalidArgument), (100_00, .system(.stripe), .failedPrecondition),
            // To an account client an unknown method is PERMISSION_DENIED, as another account's is.
            (100_00, .saved("pm_nope"), .permissionDenied),
            (100_00, .system(.sandbox, returnURL: "ftp://x"), .invalidArgument),
        ]
        for (minor, option, code) in cases {
            do {
                _ = try await client.balance.createTopUp(
                    topUpRequest(account: account.id, payer: payer.id, minor: minor, option: option)
                )
                Issue.record("accepted \(minor) with \(String(describing: option.option))")
            } catch let error as RPCError {
                #expect(error.code == code, "\(minor) \(String(describing: option.option)): \(error)")
            }
        }
        var list = BillingV1.ListPaymentsRequest()
        list.accountId = account.id
        #expect(try await client.balance.listPayments(list).payments.isEmpty)
        await f.stop()
    }
}
