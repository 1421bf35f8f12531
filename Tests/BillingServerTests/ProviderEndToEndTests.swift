import BillingAPI
import BillingMessages
import BillingRPC
import BillingTestSupport
import Foundation
import Testing

/// A whole billingd configured with the fake Stripe and the fake PayPal (each
/// checking every request against the vendor's description), driven with the
/// `billing` CLI as an operator would: a top-up that saves the method, the
/// payment made at the fake, the poller crediting it, then a second top-up
/// debited at once from the saved method.
@Suite(.serialized) struct ProviderEndToEndTests {
    struct Fakes {
        let stripe: FakeProvider
        let paypal: FakeProvider
        let secrets: String

        func stop() {
            stripe.stop()
            paypal.stop()
            try? FileManager.default.removeItem(atPath: secrets)
        }
    }

    func fakes() async throws -> Fakes {
        let secrets = FileManager.default.temporaryDirectory.appendingPathComponent("secrets-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: secrets, withIntermediateDirectories: true)
        try "\(FakeProvider.stripeSecretKey)\n".write(toFile: "\(secrets)/stripe", atomically: true, encoding: .utf8)
        try "\(FakeProvider.paypalClientSecret)\n".write(toFile: "\(secrets)/paypal", atomically: true, encoding: .utf8)
        return Fakes(stripe: try await FakeProvider.stripe(), paypal: try await FakeProvider.paypal(), secrets: secrets)
    }

    func billingd(_ fakes: Fakes) async throws -> ServerFixture {
        try await ServerFixture { configuration in
            configuration.stripe.enabled = true
            configuration.stripe.baseURL = fakes.stripe.baseURL
            configuration.stripe.secretKeyFile = "\(fakes.secrets)/stripe"
            configuration.stripe.timeoutSeconds = 5
            configuration.paypal.enabled = true
            configuration.paypal.baseURL = fakes.paypal.baseURL
            configuration.paypal.clientID = FakeProvider.paypalClientID
            configuration.paypal.clientSecretFile = "\(fakes.secrets)/paypal"
            configuration.paypal.timeoutSeconds = 5
        }
    }

    /// Top-up with --save-method through `system`; `pay` makes the payment at
    /// the fake from the redirect URL; then the second, saved-method top-up.
    func topUpAndReuse(
        system: String,
        account: String,
        fake: FakeProvider,
        f: ServerFixture,
        pay: (String) async throws -> Void
    ) async throws {
        #expect(try await f.billing(["accounts", "create", account, "--name", "E2E"]).status == 0)
        let payer = try await f.billing([
            "accounts", "add-payer", account, "--name", "Jane", "--email", "jane@example.com", "--json",
        ])
        #expect(payer.status == 0, "\(payer.stderr)")
        let payerID = try #require(try json(payer.stdout)["id"] as? String)

        let created = try await f.billing([
            "topup", "--account", account, "--amount", "100.50", "--system", system, "--save-method",
            "--return-url", "https://panel.example/billing", "--json",
        ])
        #expect(created.status == 0, "\(created.stderr)")
        let body = try json(created.stdout)
        let payment = try #require(body["payment"] as? [String: Any])
        let id = try #require(payment["id"] as? String)
        #expect(payment["status"] as? String == "new")
        let redirect = try #require(body["redirect_url"] as? String)
        #expect(redirect.hasPrefix(fake.baseURL), "the person is sent to the payment system: \(redirect)")

        try await pay(redirect)
        let waited = try await f.billing(["payment", "show", id, "--wait", "--json"])
        #expect(waited.status == 0, "\(waited.stderr)")
        #expect(try json(waited.stdout)["status"] as? String == "paid", "the poller saw it paid")

        let methods = try await f.billing(["methods", "list", "--payer", payerID, "--json"])
        let list = try #require(
            try JSONSerialization.jsonObject(with: Data(methods.stdout.utf8)) as? [[String: Any]],
            "\(methods.stdout)\(methods.stderr)"
        )
        #expect(list.count == 1)
        let method = try #require(list.first)
        #expect(method["status"] as? String == "confirmed")
        #expect(method["system"] as? String == system)
        let methodID = try #require(method["id"] as? String)

        let again = try await f.billing([
            "topup", "--account", account, "--amount", "25", "--method", methodID, "--payer", payerID, "--json",
        ])
        #expect(again.status == 0, "\(again.stderr)")
        let second = try #require(try json(again.stdout)["payment"] as? [String: Any])
        #expect(second["status"] as? String == "paid", "a saved method is debited at once")
        #expect((try json(again.stdout)["redirect_url"] as? String ?? "").isEmpty, "no redirect for a saved method")

        let balance = try await f.billing(["balance", "--account", account, "--json"])
        #expect(try (json(balance.stdout)["balance"] as? [String: Any])?["amount_minor_units"] as? Int == 125_50)
        #expect(try await fake.charges().count == 2, "two payments at \(system), each taken once")
        #expect(try await fake.problems() == [])
    }

    @Test func stripeTopUpSavesTheCardAndTheCardPaysAtOnce() async throws {
        let fakes = try await fakes()
        defer { fakes.stop() }
        let f = try await billingd(fakes)
        try await topUpAndReuse(system: "stripe", account: "acc-stripe", fake: fakes.stripe, f: f) { redirect in
            let session = try #require(redirect.split(separator: "/").last)
            try await fakes.stripe.control("sessions/\(session)/pay")
        }
        await f.stop()
    }

    @Test func paypalTopUpVaultsTheWalletAndTheWalletPaysAtOnce() async throws {
        let fakes = try await fakes()
        defer { fakes.stop() }
        let f = try await billingd(fakes)
        try await topUpAndReuse(system: "paypal", account: "acc-paypal", fake: fakes.paypal, f: f) { redirect in
            let order = try #require(URLComponents(string: redirect)?.queryItems?.first { $0.name == "token" }?.value)
            try await fakes.paypal.control("orders/\(order)/approve")
        }
        await f.stop()
    }

    @Test func aPaymentSystemThatRefusesThePaymentEndsItCancelledAtOnce() async throws {
        let fakes = try await fakes()
        // Wrong PayPal credentials: PayPal refuses every call, for good.
        try "not-the-secret\n".write(toFile: "\(fakes.secrets)/paypal", atomically: true, encoding: .utf8)
        let f = try await billingd(fakes)
        let (account, payer) = try await f.account("acc-refused")
        let client = try f.clients("internal")
        do {
            _ = try await client.balance.createTopUp(
                topUpRequest(
                    account: account.id,
                    payer: payer.id,
                    minor: 20_00,
                    option: .system(.paypal, save: true)
                )
            )
            Issue.record("PayPal accepted a payment with wrong credentials")
        } catch let error as RPCError {
            #expect(error.code == .failedPrecondition, "\(error)")
        }
        var list = BillingV1.ListPaymentsRequest()
        list.accountId = account.id
        let payment = try #require(try await client.balance.listPayments(list).payments.first)
        #expect(payment.status == .cancelled, "ended in the same call")
        #expect(payment.failureReason.contains("refused by PayPal"), "\(payment.failureReason)")
        var methods = BillingV1.ListPaymentMethodsRequest()
        methods.payerId = payer.id
        methods.includeRemoved = true
        #expect(try await client.methods.listPaymentMethods(methods).methods.map(\.status) == [.failed])
        // Fixed credentials later start nothing: the poller has nothing to start.
        try "\(FakeProvider.paypalClientSecret)\n".write(
            toFile: "\(fakes.secrets)/paypal",
            atomically: true,
            encoding: .utf8
        )
        try await Task.sleep(for: .milliseconds(600))
        let requests = try await fakes.paypal.requests().filter {
            ($0["path"] as? String)?.hasPrefix("/v2/checkout/orders") == true
        }
        #expect(requests.isEmpty, "no order was ever created")
        await f.stop()
        fakes.stop()
    }

    @Test func aReloadRotatesThePaymentSystemsSecrets() async throws {
        let fakes = try await fakes()
        // billingd starts with credentials both payment systems refuse.
        try "sk_live_revoked\n".write(toFile: "\(fakes.secrets)/stripe", atomically: true, encoding: .utf8)
        try "revoked\n".write(toFile: "\(fakes.secrets)/paypal", atomically: true, encoding: .utf8)
        let f = try await billingd(fakes)
        let (account, payer) = try await f.account("acc-rotate")
        let client = try f.clients("internal")
        func topUp(_ system: BillingV1.PaymentSystem) async throws -> BillingV1.CreateTopUpResponse {
            try await client.balance.createTopUp(
                topUpRequest(account: account.id, payer: payer.id, minor: 25_00, option: .system(system))
            )
        }
        await #expect(throws: RPCError.self) { _ = try await topUp(.stripe) }
        await #expect(throws: RPCError.self) { _ = try await topUp(.paypal) }

        // The operator puts the right ones in the files and reloads (SIGHUP).
        try "\(FakeProvider.stripeSecretKey)\n".write(
            toFile: "\(fakes.secrets)/stripe",
            atomically: true,
            encoding: .utf8
        )
        try "\(FakeProvider.paypalClientSecret)\n".write(
            toFile: "\(fakes.secrets)/paypal",
            atomically: true,
            encoding: .utf8
        )
        #expect(await f.application.reload())
        let stripe = try await topUp(.stripe)
        #expect(stripe.payment?.status == .new && !stripe.redirectUrl.isEmpty)
        let paypal = try await topUp(.paypal)
        #expect(paypal.payment?.status == .new && !paypal.redirectUrl.isEmpty)

        // A reload that cannot read a secret (file gone, or not one token) keeps the current one.
        try FileManager.default.removeItem(atPath: "\(fakes.secrets)/stripe")
        try "two\nlines\n".write(toFile: "\(fakes.secrets)/paypal", atomically: true, encoding: .utf8)
        #expect(await f.application.reload() == false)
        #expect(try await topUp(.stripe).payment?.status == .new)
        #expect(try await topUp(.paypal).payment?.status == .new)
        #expect(try await fakes.stripe.problems() == [])
        #expect(try await fakes.paypal.problems() == [])
        await f.stop()
        fakes.stop()
    }

    @Test func oneStripeCustomerPerPayerMadeOnce() async throws {
        let fakes = try await fakes()
        let f = try await billingd(fakes)
        let (account, payer) = try await f.account("acc-one-customer")
        let client = try f.clients("internal")
        for amount in [20_00, 30_00] as [Int64] {
            let created = try await client.balance.createTopUp(
                topUpRequest(
                    account: account.id,
                    payer: payer.id,
                    minor: amount,
                    option: .system(.stripe, save: true)
                )
            )
            #expect(created.payment?.status == .new)
        }
        let requests = try await fakes.stripe.requests()
        // The caller and the poller may both start the first payment: one key, so one Customer.
        let customerKeys = Set(
            requests.filter { $0["path"] as? String == "/v1/customers" }.compactMap { $0["idempotency_key"] as? String }
        )
        #expect(customerKeys.count == 1, "one Customer for the payer, not one per payment: \(customerKeys)")
        let sessions = requests.filter { $0["path"] as? String == "/v1/checkout/sessions" }.compactMap {
            $0["body"] as? String
        }
        let named = sessions.compactMap { body in body.split(separator: "&").first { $0.hasPrefix("customer=") } }
        #expect(named.count == sessions.count && Set(named).count == 1, "every session for the same customer: \(named)")
        #expect(try await fakes.stripe.problems() == [])
        await f.stop()
        fakes.stop()
    }

    @Test func anAmountStripeFindsTooSmallEndsCancelledAtOnceWithItsReason() async throws {
        let fakes = try await fakes()
        let f = try await billingd(fakes)
        let (account, payer) = try await f.account("acc-too-small")
        // A Stripe account settling in a currency where 0.60 USD is under the minimum.
        try await fakes.stripe.control("settlement?minimum=70")
        let client = try f.clients("internal")
        do {
            _ = try await client.balance.createTopUp(
                topUpRequest(account: account.id, payer: payer.id, minor: 60, option: .system(.stripe))
            )
            Issue.record("Stripe accepted it")
        } catch let error as RPCError {
            #expect(error.code == .failedPrecondition, "\(error)")
        }
        var list = BillingV1.ListPaymentsRequest()
        list.accountId = account.id
        let payment = try #require(try await client.balance.listPayments(list).payments.first)
        #expect(payment.status == .cancelled, "not left for the poller to cancel ten minutes later")
        #expect(payment.failureReason.contains("Amount must convert to at least 50 cents"), "\(payment.failureReason)")
        #expect(try await fakes.stripe.problems() == [])
        await f.stop()
        fakes.stop()
    }
}
