import BillingCore
import BillingProviders
import BillingTestSupport
import Foundation
import Testing

/// The PayPal adapter against a local fake that keeps state and checks every
/// request (and its own answers) against PayPal's Orders v2 description.
///
/// Serialized for the reason StripeProviderTests is.
@Suite(.serialized) struct PayPalProviderTests {
    func provider(
        _ fake: FakeProvider,
        timeout: Duration = .seconds(5),
        secret: String = FakeProvider.paypalClientSecret
    ) -> PayPalProvider {
        var configuration = PayPalProvider.Configuration(clientID: FakeProvider.paypalClientID, clientSecret: secret)
        configuration.baseURL = fake.baseURL
        configuration.timeout = timeout
        return PayPalProvider(configuration)
    }

    func payment(
        _ id: String = "pay_\(UUID().uuidString.prefix(8))",
        save: Bool = false,
        amount: Money = Money(minorUnits: 100_50, .usd)
    ) -> Payment {
        Payment(
            id: id,
            accountID: "acc-1",
            payerID: "pyr_1",
            purpose: .topUp,
            amount: amount,
            status: .new,
            optionKind: .paymentSystem,
            system: .paypal,
            paymentMethodID: nil,
            savedPaymentMethodID: save ? "pm_ours" : nil,
            providerReference: "",
            redirectURL: "",
            returnURL: "https://panel.example/payments",
            invoiceNumber: nil,
            failureReason: "",
            renewalOrderID: nil,
            migrationOrderID: nil,
            createdAtMs: 0,
            updatedAtMs: 0,
            finishedAtMs: nil,
            nextCheckAtMs: nil,
            checkAttempts: 0
        )
    }

    let payer = Payer(
        id: "pyr_1",
        accountID: "acc-1",
        displayName: "Jane Doe",
        email: "jane@example.com",
        createdAtMs: 0
    )

    /// A created order, its reference filled in.
    func created(_ paypal: PayPalProvider, _ payment: Payment, save: Bool = false) async throws -> Payment {
        var payment = payment
        let order = try await paypal.createPayment(
            ProviderPaymentRequest(payment: payment, payer: payer, saveMethod: save)
        )
        payment.providerReference = order.reference
        payment.redirectURL = order.redirectURL
        return payment
    }

    func method(_ reference: String) -> PaymentMethod {
        PaymentMethod(
            id: "pm_ours",
            payerID: "pyr_1",
            system: .paypal,
            status: .confirmed,
            isDefault: true,
            displayName: "PayPal",
            providerReference: reference,
            savedWithPaymentID: "",
            createdAtMs: 0,
            updatedAtMs: 0
        )
    }

    func body(_ request: [String: Any]) throws -> [String: Any] {
        let text = try #require(request["body"] as? String)
        return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func anOrderIsCreatedAsTheSpecDescribesAndCapturedOnceApproved() async throws {
        let fake = try await FakeProvider.paypal()
        defer { fake.stop() }
        let paypal = provider(fake)
        let order = try await created(paypal, payment())
        #expect(order.redirectURL == "\(fake.baseURL)/checkoutnow?token=\(order.providerReference)")
        #expect(try await paypal.checkPayment(order) == .pending)
        try await fake.control("orders/\(order.providerReference)/approve")
        #expect(try await paypal.checkPayment(order) == .paid(nil))
        #expect(
            try await paypal.checkPayment(order) == .paid(nil),
            "a second look finds it captured, not captured again"
        )
        #expect(try await fake.charges().count == 1)

        let requests = try await fake.requests()
        let create = try body(try #require(requests.first { $0["path"] as? String == "/v2/checkout/orders" }))
        #expect(create["intent"] as? String == "CAPTURE")
        let unit = try #require((create["purchase_units"] as? [[String: Any]])?.first)
        #expect(unit["custom_id"] as? String == order.id)
        #expect(unit["invoice_id"] as? String == order.id)
        #expect(unit["amount"] as? [String: String] == ["currency_code": "USD", "value": "100.50"])
        let context =
            ((create["payment_source"] as? [String: Any])?["paypal"] as? [String: Any])?["experience_context"]
            as? [String: Any]
        #expect(context?["return_url"] as? String == "https://panel.example/payments")
        #expect(context?["cancel_url"] as? String == "https://panel.example/payments")
        let headers = requests.compactMap { $0["headers"] as? [String: String] }
        #expect(headers.contains { $0["paypal-request-id"] == "\(order.id)-order" })
        let captures = requests.filter { ($0["path"] as? String)?.hasSuffix("/capture") == true }
        #expect(captures.count == 1)
        #expect(captures.first?["idempotency_key"] as? String == "\(order.id)-capture")

        // Zero-decimal currencies are whole numbers at PayPal.
        _ = try await created(paypal, payment(amount: Money(minorUnits: 1500, try Currency(code: "JPY"))))
        #expect(try await fake.problems() == [])
    }

    @Test func savingTheWalletVaultsItAndItPaysLaterWithoutARedirect() async throws {
        let fake = try await FakeProvider.paypal()
        defer { fake.stop() }
        let paypal = provider(fake)
        let saving = try await created(paypal, payment(save: true), save: true)
        try await fake.control("orders/\(saving.providerReference)/approve")
        guard case .paid(let saved?) = try await paypal.checkPayment(saving) else {
            Issue.record("expected Paid with a vaulted wallet")
            return
        }
        #expect(saved.reference.hasPrefix("VAULT"))
        #expect(saved.displayName == "PayPal (buyer@example.com)")
        let create = try body(
            try #require(try await fake.requests().first { $0["path"] as? String == "/v2/checkout/orders" })
        )
        let vault =
            (((create["payment_source"] as? [String: Any])?["paypal"] as? [String: Any])?["attributes"]
            as? [String: Any])?["vault"] as? [String: Any]
        #expect(vault?["store_in_vault"] as? String == "ON_SUCCESS")

        let charge = try await paypal.chargeSavedMethod(payment("pay_vaulted"), method: method(saved.reference))
        #expect(charge.outcome == .paid(nil))
        #expect(!charge.reference.isEmpty)
        let charges = try await fake.requests().filter { $0["idempotency_key"] as? String == "pay_vaulted-charge" }
        let source = try body(try #require(charges.first))["payment_source"] as? [String: Any]
        #expect(source?["paypal"] as? [String: String] == ["vault_id": saved.reference])

        try await fake.control("decline/\(saved.reference)")
        let declined = try await paypal.chargeSavedMethod(payment(), method: method(saved.reference))
        #expect(declined.outcome == .failed("PayPal declined the capture"))
        let unknown = try await paypal.chargeSavedMethod(payment(), method: method("VAULTGONE"))
        #expect(unknown.outcome == .failed("PayPal refused the saved method (PAYMENT_SOURCE_INFO_CANNOT_BE_VERIFIED)"))

        try await paypal.removeMethod(method(saved.reference))
        #expect(try await fake.control("vaults", method: "GET") as? [String] == [])
        try await paypal.removeMethod(method(saved.reference))  // already gone: fine
        #expect(try await fake.problems() == [])
    }

    @Test func everyCaptureAndOrderStatusMaps() async throws {
        let fake = try await FakeProvider.paypal()
        defer { fake.stop() }
        let paypal = provider(fake)
        for (status, expected) in [
            ("DECLINED", ProviderOutcome.failed("PayPal declined the capture")),
            ("FAILED", .failed("PayPal failed the capture")), ("PENDING", .pending),
            ("INSTRUMENT_DECLINED", .failed("PayPal refused the capture (INSTRUMENT_DECLINED)")),
        ] {
            let order = try await created(paypal, payment())
            try await fake.control("orders/\(order.providerReference)/approve")
            try await fake.control("capture?status=\(status)")
            #expect(try await paypal.checkPayment(order) == expected, "capture \(status)")
            if status == "PENDING" {
                #expect(try await paypal.checkPayment(order) == .pending, "still pending, not captured twice")
                let orderView = try await fake.control("orders", method: "GET") as? [[String: Any]] ?? []
                let unit =
                    (orderView.first { $0["id"] as? String == order.providerReference }?["purchase_units"]
                    as? [[String: Any]])?.first
                let capture = try #require(
                    ((unit?["payments"] as? [String: Any])?["captures"] as? [[String: Any]])?.first?["id"] as? String
                )
                try await fake.control("captures/\(capture)/complete")
                #expect(try await paypal.checkPayment(order) == .paid(nil), "the pending capture completed")
            }
        }
        // A capture held until the merchant acts is told apart from one PayPal is reviewing.
        let held = try await created(paypal, payment())
        try await fake.control("orders/\(held.providerReference)/approve")
        try await fake.control("capture?status=PENDING&reason=RECEIVING_PREFERENCE_MANDATES_MANUAL_ACTION")
        #expect(
            try await paypal.checkPayment(held)
                == .held(
                    "PayPal holds the capture until the merchant acts (RECEIVING_PREFERENCE_MANDATES_MANUAL_ACTION)"
                )
        )

        let voided = try await created(paypal, payment())
        try await fake.control("orders/\(voided.providerReference)/void")
        #expect(try await paypal.checkPayment(voided) == .failed("PayPal voided the order"))

        let lapsed = try await created(paypal, payment())
        try await fake.control("orders/\(lapsed.providerReference)/expire")
        #expect(try await paypal.checkPayment(lapsed) == .failed("the PayPal order expired or no longer exists"))
        #expect(try await fake.problems() == [])
    }

    @Test func expiryCancelsAnUnapprovedOrderAndCapturesAnApprovedOne() async throws {
        let fake = try await FakeProvider.paypal()
        defer { fake.stop() }
        let paypal = provider(fake)
        let open = try await created(paypal, payment())
        #expect(try await paypal.expirePayment(open) == .failed("the PayPal order was not approved in time"))

        let approved = try await created(paypal, payment())
        try await fake.control("orders/\(approved.providerReference)/approve")
        #expect(
            try await paypal.expirePayment(approved) == .paid(nil),
            "approved just before expiry: the payer's money is taken, and credited"
        )

        let gone = try await created(paypal, payment())
        try await fake.control("orders/\(gone.providerReference)/expire")
        #expect(try await paypal.expirePayment(gone) == .failed("the PayPal order expired or no longer exists"))
        #expect(try await fake.charges().count == 1)
        #expect(try await fake.problems() == [])
    }

    @Test func theTokenIsFetchedOnceSharedAndRenewed() async throws {
        let fake = try await FakeProvider.paypal()
        defer { fake.stop() }
        let paypal = provider(fake)
        let order = try await created(paypal, payment())
        try await withThrowingTaskGroup(of: ProviderOutcome.self) { group in
            for _ in 0..<8 { group.addTask { try await paypal.checkPayment(order) } }
            for try await outcome in group { #expect(outcome == .pending) }
        }
        #expect(try await fake.control("tokens", method: "GET") as? Int == 1, "one token for nine calls")

        // Revoked early: the 401 brings one new token and the call succeeds.
        try await fake.control("revoke")
        #expect(try await paypal.checkPayment(order) == .pending)
        #expect(try await fake.control("tokens", method: "GET") as? Int == 2)

        // Short-lived tokens are renewed before they expire, not after a 401.
        try await fake.control("token?expires_in=1")
        try await fake.control("revoke")
        #expect(try await paypal.checkPayment(order) == .pending)
        try await Task.sleep(for: .milliseconds(1100))
        let before = try await fake.requests().count
        #expect(try await paypal.checkPayment(order) == .pending)
        let after = try await fake.requests().dropFirst(before).map { $0["path"] as? String ?? "" }
        #expect(after == ["/v1/oauth2/token", "/v2/checkout/orders/\(order.providerReference)"])

        // Wrong credentials: refused, not retried as if it could help.
        let wrong = provider(fake, secret: "not-the-secret")
        let asked = try await fake.requests().count
        let failure = await providerError { () async throws(ProviderError) in try await wrong.checkPayment(order) }
        guard case .rejected? = failure else {
            Issue.record("expected rejected, got \(String(describing: failure))")
            return
        }
        #expect(
            try await fake.requests().dropFirst(asked).map { $0["path"] as? String ?? "" } == ["/v1/oauth2/token"],
            "one 401, no retry"
        )
        #expect(try await fake.problems() == [])
    }

    @Test func aRetryAfterATimeoutSendsTheSameRequestIDAndChargesOnce() async throws {
        let fake = try await FakeProvider.paypal()
        defer { fake.stop() }
        let paypal = provider(fake, timeout: .seconds(1))
        let saving = try await created(paypal, payment(save: true), save: true)
        try await fake.control("orders/\(saving.providerReference)/approve")
        guard case .paid(let saved?) = try await paypal.checkPayment(saving) else {
            Issue.record("not paid")
            return
        }
        // The first answer comes after our timeout; the charge happened anyway.
        try await fake.control("delay?ms=2500&count=1")
        let charge = try await paypal.chargeSavedMethod(payment("pay_timeout"), method: method(saved.reference))
        #expect(charge.outcome == .paid(nil))
        let attempts = try await fake.requests().filter { $0["idempotency_key"] as? String == "pay_timeout-charge" }
        #expect(attempts.count >= 2)
        #expect(Set(attempts.compactMap { $0["body"] as? String }).count == 1, "the same bytes every time")
        #expect(try await fake.charges().count == 2, "the first top-up and one saved-method charge")
        #expect(try await fake.problems() == [])
    }

    @Test func rateLimitsAndServerErrorsAreRetriedThenReported() async throws {
        let fake = try await FakeProvider.paypal()
        defer { fake.stop() }
        let paypal = provider(fake)
        _ = try await created(paypal, payment())  // the token, first
        try await fake.control("fail?status=429&count=2")
        _ = try await created(paypal, payment("pay_429"))
        let orders = try await fake.control("orders", method: "GET") as? [Any] ?? []
        #expect(orders.count == 2)

        try await fake.control("fail?status=503&count=6")
        let failure = await providerError { () async throws(ProviderError) in
            try await paypal.createPayment(
                ProviderPaymentRequest(payment: payment("pay_503"), payer: payer, saveMethod: false)
            )
        }
        if case .unavailable? = failure {
        } else {
            Issue.record("expected unavailable, got \(String(describing: failure))")
        }
    }

    @Test func aMalformedAnswerIsAnErrorWithTheDebugIDAndChangesNothing() async throws {
        let fake = try await FakeProvider.paypal()
        defer { fake.stop() }
        let paypal = provider(fake)
        let order = try await created(paypal, payment())
        try await fake.control("orders/\(order.providerReference)/approve")
        try await fake.control("malformed?count=1")
        let failure = await providerError { () async throws(ProviderError) in try await paypal.checkPayment(order) }
        guard case .malformed(_, let requestID)? = failure else {
            Issue.record("expected malformed, got \(String(describing: failure))")
            return
        }
        #expect(requestID?.hasPrefix("req_") == true)
        #expect(try await fake.charges() == [], "nothing captured on a body we could not read")
    }

    @Test func aFieldOfTheWrongTypeIsMalformedNamingTheFieldAndCapturesNothing() async throws {
        let fake = try await FakeProvider.paypal()
        defer { fake.stop() }
        let paypal = provider(fake)
        let order = try await created(paypal, payment())
        try await fake.control("mistyped?field=status")
        let failure = await providerError { () async throws(ProviderError) in try await paypal.checkPayment(order) }
        guard case .malformed(let why, _)? = failure else {
            Issue.record("expected malformed, got \(String(describing: failure))")
            return
        }
        #expect(why.contains("status has the wrong type"), "\(why)")
        #expect(try await fake.charges() == [], "nothing captured on a body we could not read")
        #expect(try await paypal.checkPayment(order) == .pending)
    }
}
