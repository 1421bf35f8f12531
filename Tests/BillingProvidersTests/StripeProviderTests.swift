import BillingCore
import BillingProviders
import BillingTestSupport
import Foundation
import Testing

/// The Stripe adapter against a local fake that keeps state and checks every
/// request against Stripe's OpenAPI description (Tests/Interop/vendor/).
///
/// Serialized: run in parallel, the seven fakes and their URLSessions stalled
/// Foundation's networking on Linux (not understood yet; see the closing note).
@Suite(.serialized) struct StripeProviderTests {
    func provider(_ fake: FakeProvider, timeout: Duration = .seconds(5)) -> StripeProvider {
        var configuration = StripeProvider.Configuration(secretKey: "sk_test_billingd")
        configuration.baseURL = fake.baseURL
        configuration.timeout = timeout
        return StripeProvider(configuration)
    }

    func payment(
        _ id: String = "pay_\(UUID().uuidString.prefix(8))",
        save: Bool = false,
        reference: String = ""
    ) -> Payment {
        Payment(
            id: id,
            accountID: "acc-1",
            payerID: "pyr_1",
            purpose: .topUp,
            amount: Money(minorUnits: 100_50, .usd),
            status: .new,
            optionKind: .paymentSystem,
            system: .stripe,
            paymentMethodID: nil,
            savedPaymentMethodID: save ? "pm_ours" : nil,
            providerReference: reference,
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

    /// A card saved by a paid checkout, as billingd records it.
    func savedCard(_ stripe: StripeProvider, _ fake: FakeProvider) async throws -> PaymentMethod {
        var saving = payment(save: true)
        saving.providerReference = try await stripe.createPayment(
            ProviderPaymentRequest(payment: saving, payer: payer, saveMethod: true)
        ).reference
        try await fake.control("sessions/\(saving.providerReference)/pay")
        guard case .paid(let saved?) = try await stripe.checkPayment(saving) else {
            throw FakeProvider.Failure(description: "not paid with a saved card")
        }
        return PaymentMethod(
            id: "pm_ours",
            payerID: "pyr_1",
            system: .stripe,
            status: .confirmed,
            isDefault: true,
            displayName: saved.displayName,
            providerReference: saved.reference,
            savedWithPaymentID: saving.id,
            createdAtMs: 0,
            updatedAtMs: 0
        )
    }

    @Test func aCheckoutSessionIsCreatedAsTheSpecDescribesAndMapsEveryStatus() async throws {
        let fake = try await FakeProvider.stripe()
        defer { fake.stop() }
        let stripe = provider(fake)
        var open = payment()
        let created = try await stripe.createPayment(
            ProviderPaymentRequest(payment: open, payer: payer, saveMethod: false)
        )
        #expect(created.reference.hasPrefix("cs_test_"))
        #expect(created.redirectURL == "\(fake.baseURL)/pay/\(created.reference)")
        open.providerReference = created.reference
        #expect(try await stripe.checkPayment(open) == .pending)
        try await fake.control("sessions/\(created.reference)/pay")
        #expect(try await stripe.checkPayment(open) == .paid(nil))

        var expiring = payment()
        expiring.providerReference = try await stripe.createPayment(
            ProviderPaymentRequest(payment: expiring, payer: payer, saveMethod: false)
        ).reference
        try await fake.control("sessions/\(expiring.providerReference)/expire")
        #expect(try await stripe.checkPayment(expiring) == .failed("the Stripe checkout expired before it was paid"))

        let requests = try await fake.requests()
        let session = try #require(requests.first { $0["path"] as? String == "/v1/checkout/sessions" })
        let body = try #require(session["body"] as? String)
        #expect(body.contains("client_reference_id=\(open.id)"))
        #expect(body.contains("metadata%5Bpayment_id%5D=\(open.id)"))
        #expect(body.contains("line_items%5B0%5D%5Bprice_data%5D%5Bunit_amount%5D=10050"))
        #expect(session["idempotency_key"] as? String == "\(open.id)-session")
        #expect(try await fake.problems() == [])
    }

    @Test func savingAMethodMakesACustomerAndReturnsTheCard() async throws {
        let fake = try await FakeProvider.stripe()
        defer { fake.stop() }
        let stripe = provider(fake)
        var saving = payment(save: true)
        saving.providerReference = try await stripe.createPayment(
            ProviderPaymentRequest(payment: saving, payer: payer, saveMethod: true)
        ).reference
        try await fake.control("sessions/\(saving.providerReference)/pay")
        guard case .paid(let saved?) = try await stripe.checkPayment(saving) else {
            Issue.record("expected Paid with a saved method")
            return
        }
        #expect(saved.reference.hasPrefix("cus_"))
        #expect(saved.reference.contains("/pm_"))
        #expect(saved.displayName == "Visa •••• 4242")
        let body =
            try await fake.requests().first { $0["path"] as? String == "/v1/checkout/sessions" }?["body"] as? String
            ?? ""
        #expect(body.contains("payment_intent_data%5Bsetup_future_usage%5D=off_session"))
        #expect(body.contains("customer=cus_"))

        // Off-session charge of that card, then a declined one.
        let method = PaymentMethod(
            id: "pm_ours",
            payerID: "pyr_1",
            system: .stripe,
            status: .confirmed,
            isDefault: true,
            displayName: saved.displayName,
            providerReference: saved.reference,
            savedWithPaymentID: saving.id,
            createdAtMs: 0,
            updatedAtMs: 0
        )
        let charge = try await stripe.chargeSavedMethod(payment(), method: method)
        #expect(charge.outcome == .paid(nil))
        #expect(charge.reference.hasPrefix("pi_"))
        try await fake.control("decline/\(saved.reference.split(separator: "/")[1])")
        let declined = try await stripe.chargeSavedMethod(payment(), method: method)
        #expect(declined.outcome == .failed("card declined (card_declined: insufficient_funds)"))

        try await stripe.removeMethod(method)
        try await stripe.removeMethod(method)  // already detached: fine
        #expect(try await fake.problems() == [])
    }

    @Test func expiringASessionPaidMeanwhileReportsItPaid() async throws {
        let fake = try await FakeProvider.stripe()
        defer { fake.stop() }
        let stripe = provider(fake)
        var paid = payment()
        paid.providerReference = try await stripe.createPayment(
            ProviderPaymentRequest(payment: paid, payer: payer, saveMethod: false)
        ).reference
        try await fake.control("sessions/\(paid.providerReference)/pay")
        #expect(try await stripe.expirePayment(paid) == .paid(nil))

        var open = payment()
        open.providerReference = try await stripe.createPayment(
            ProviderPaymentRequest(payment: open, payer: payer, saveMethod: false)
        ).reference
        #expect(try await stripe.expirePayment(open) == .failed("the Stripe checkout expired before it was paid"))

        var expired = payment()
        expired.providerReference = try await stripe.createPayment(
            ProviderPaymentRequest(payment: expired, payer: payer, saveMethod: false)
        ).reference
        try await fake.control("sessions/\(expired.providerReference)/expire")
        #expect(
            try await stripe.expirePayment(expired) == .failed("the Stripe checkout expired before it was paid"),
            "expired at Stripe between our check and our expire call"
        )
        #expect(try await fake.problems() == [])
    }

    @Test func aRetryAfterATimeoutSendsTheSameKeyAndChargesOnce() async throws {
        let fake = try await FakeProvider.stripe()
        defer { fake.stop() }
        let stripe = provider(fake, timeout: .seconds(1))
        let method = try await savedCard(stripe, fake)
        // The first answer comes after our timeout; the charge happened anyway.
        try await fake.control("delay?ms=2500&count=1")
        let charge = try await stripe.chargeSavedMethod(payment("pay_timeout"), method: method)
        #expect(charge.outcome == .paid(nil))
        let attempts = try await fake.requests().filter { $0["path"] as? String == "/v1/payment_intents" }
        #expect(attempts.count >= 2)
        #expect(Set(attempts.compactMap { $0["idempotency_key"] as? String }) == ["pay_timeout-charge"])
        #expect(try await fake.charges().count == 2, "the checkout and one off-session charge at Stripe")
    }

    @Test func rateLimitsAndServerErrorsAreRetriedThenReported() async throws {
        let fake = try await FakeProvider.stripe()
        defer { fake.stop() }
        let stripe = provider(fake)
        try await fake.control("fail?status=409&count=1")  // idempotency key in use by a concurrent request
        try await fake.control("fail?status=429&count=1")
        let created = try await stripe.createPayment(
            ProviderPaymentRequest(payment: payment("pay_429"), payer: payer, saveMethod: false)
        )
        #expect(created.reference.hasPrefix("cs_test_"))
        let sessions = try await fake.control("sessions", method: "GET") as? [Any] ?? []
        #expect(sessions.count == 1)

        try await fake.control("fail?status=503&count=6")
        await #expect(throws: ProviderError.self) {
            try await stripe.createPayment(
                ProviderPaymentRequest(payment: payment("pay_503"), payer: payer, saveMethod: false)
            )
        }
        let failure = await providerError { () async throws(ProviderError) in
            try await stripe.createPayment(
                ProviderPaymentRequest(payment: payment("pay_503b"), payer: payer, saveMethod: false)
            )
        }
        if case .unavailable? = failure {
        } else {
            Issue.record("expected unavailable, got \(String(describing: failure))")
        }
    }

    @Test func aMalformedAnswerIsAnErrorWithTheRequestIDAndChangesNothing() async throws {
        let fake = try await FakeProvider.stripe()
        defer { fake.stop() }
        let stripe = provider(fake)
        try await fake.control("malformed?count=1")
        let failure = await providerError { () async throws(ProviderError) in
            try await stripe.createPayment(ProviderPaymentRequest(payment: payment(), payer: payer, saveMethod: false))
        }
        guard case .malformed(_, let requestID)? = failure else {
            Issue.record("expected malformed, got \(String(describing: failure))")
            return
        }
        #expect(requestID?.hasPrefix("req_") == true)

        try await fake.control("oversized?count=1")
        let huge = await providerError { () async throws(ProviderError) in
            try await stripe.createPayment(ProviderPaymentRequest(payment: payment(), payer: payer, saveMethod: false))
        }
        guard case .malformed(let why, _)? = huge else {
            Issue.record("expected malformed, got \(String(describing: huge))")
            return
        }
        #expect(why.contains("over 1048576"))
    }

    @Test func aFieldOfTheWrongTypeIsMalformedNamingTheFieldAndTheNextAnswerIsRead() async throws {
        let fake = try await FakeProvider.stripe()
        defer { fake.stop() }
        let stripe = provider(fake)
        var open = payment()
        open.providerReference = try await stripe.createPayment(
            ProviderPaymentRequest(payment: open, payer: payer, saveMethod: false)
        ).reference
        try await fake.control("mistyped?field=status")
        let failure = await providerError { () async throws(ProviderError) in try await stripe.checkPayment(open) }
        guard case .malformed(let why, let requestID)? = failure else {
            Issue.record("expected malformed, got \(String(describing: failure))")
            return
        }
        #expect(why.contains("status has the wrong type"), "\(why)")
        #expect(!why.contains("12345"), "the payment system's values stay out of the message")
        #expect(requestID?.hasPrefix("req_") == true)
        #expect(try await stripe.checkPayment(open) == .pending)
    }

    @Test func anUnknownSessionIsCancelledNotAnError() async throws {
        let fake = try await FakeProvider.stripe()
        defer { fake.stop() }
        #expect(
            try await provider(fake).checkPayment(payment(reference: "cs_test_gone"))
                == .failed("the Stripe checkout session no longer exists")
        )
    }

    @Test func aDelayedMethodStaysNewUntilItSettlesAndCannotBeExpired() async throws {
        let fake = try await FakeProvider.stripe()
        defer { fake.stop() }
        let stripe = provider(fake)
        var settling = payment()
        settling.providerReference = try await stripe.createPayment(
            ProviderPaymentRequest(payment: settling, payer: payer, saveMethod: false)
        ).reference
        try await fake.control("sessions/\(settling.providerReference)/pay?later=1")
        #expect(try await stripe.checkPayment(settling) == .pending, "complete + unpaid is New")
        #expect(try await stripe.expirePayment(settling) == .pending, "the debit is on its way: expiry cannot stop it")
        try await fake.control("sessions/\(settling.providerReference)/settle")
        #expect(try await stripe.checkPayment(settling) == .paid(nil))

        var failing = payment()
        failing.providerReference = try await stripe.createPayment(
            ProviderPaymentRequest(payment: failing, payer: payer, saveMethod: false)
        ).reference
        try await fake.control("sessions/\(failing.providerReference)/pay?later=1")
        try await fake.control("sessions/\(failing.providerReference)/settle?fail=1")
        #expect(
            try await stripe.checkPayment(failing)
                == .failed("the charge ended requires_payment_method (payment_method_provider_decline)")
        )
        #expect(try await fake.charges().count == 1)
        #expect(try await fake.problems() == [])
    }

    @Test func aBankAccountAwaitingMicroDepositsStaysNewAndIsNamedAsABank() async throws {
        let fake = try await FakeProvider.stripe()
        defer { fake.stop() }
        let stripe = provider(fake)
        var saving = payment(save: true)
        saving.providerReference = try await stripe.createPayment(
            ProviderPaymentRequest(payment: saving, payer: payer, saveMethod: true)
        ).reference
        try await fake.control("sessions/\(saving.providerReference)/pay?method=us_bank_account")
        // Complete, unpaid, its PaymentIntent requires_action (verify_with_microdeposits): money on its way, not a failure.
        #expect(try await stripe.checkPayment(saving) == .pending)
        #expect(try await stripe.expirePayment(saving) == .pending)
        try await fake.control("sessions/\(saving.providerReference)/settle")
        guard case .paid(let saved?) = try await stripe.checkPayment(saving) else {
            Issue.record("the verified debit is not Paid with its method")
            return
        }
        #expect(saved.displayName == "STRIPE TEST BANK •••• 6789", "not \"Card\"")
        // The Checkout says which methods it offers.
        let session = try #require(try await fake.requests().first { $0["path"] as? String == "/v1/checkout/sessions" })
        #expect(
            (session["body"] as? String)?.contains("payment_method_types%5B0%5D=card") == true,
            "\(session["body"] ?? "")"
        )
        #expect(try await fake.problems() == [])
    }

    @Test func aChargeWhoseAnswerWasAReplayedServerErrorIsFoundByItsPaymentID() async throws {
        let fake = try await FakeProvider.stripe()
        defer { fake.stop() }
        let stripe = provider(fake)
        let method = try await savedCard(stripe, fake)
        var charged = payment()
        charged.optionKind = .savedMethod
        #expect(try await stripe.findCharge(charged, method: method) == nil, "nothing there before the charge")
        // Stripe makes the charge, then answers 500 and keeps that answer for the key.
        try await fake.control("fail?status=500&after=1")
        await #expect(throws: ProviderError.self) { try await stripe.chargeSavedMethod(charged, method: method) }
        do {
            _ = try await stripe.chargeSavedMethod(charged, method: method)
            Issue.record("the replayed 500 was taken for an answer")
        } catch {
            #expect("\(error)".contains("replayed"), "\(error)")
        }
        #expect(try await fake.charges().count == 2, "the saving top-up and this charge: made once")
        let found = try #require(try await stripe.findCharge(charged, method: method))
        #expect(found.outcome == .paid(nil))
        #expect(found.reference.hasPrefix("pi_"))
        #expect(try await fake.problems() == [])
    }

    @Test func aDetachedCardIsADefinitiveRefusalOfTheMethod() async throws {
        let fake = try await FakeProvider.stripe()
        defer { fake.stop() }
        let stripe = provider(fake)
        let method = try await savedCard(stripe, fake)
        try await stripe.removeMethod(method)
        let charge = try await stripe.chargeSavedMethod(payment(), method: method)
        #expect(charge.methodUnusable, "the method can never pay again")
        guard case .failed = charge.outcome else {
            Issue.record("not a failure: \(charge.outcome)")
            return
        }
        #expect(try await fake.problems() == [])
    }

    @Test func anOffSessionChargeThatIsProcessingIsCheckedUntilItSucceeds() async throws {
        let fake = try await FakeProvider.stripe()
        defer { fake.stop() }
        let stripe = provider(fake)
        let method = try await savedCard(stripe, fake)

        try await fake.control("intents/next?status=processing")
        var charged = payment()
        charged.optionKind = .savedMethod
        let charge = try await stripe.chargeSavedMethod(charged, method: method)
        #expect(charge.outcome == .pending)
        charged.providerReference = charge.reference
        #expect(try await stripe.checkPayment(charged) == .pending, "the payment intent is read, not a session")
        #expect(try await stripe.expirePayment(charged) == .pending, "processing cannot be stopped")
        try await fake.control("intents/\(charge.reference)/succeed")
        #expect(try await stripe.checkPayment(charged) == .paid(nil))

        // A card that needs its holder (3-D Secure) cannot be charged off-session.
        try await fake.control(
            "decline/\(method.providerReference.split(separator: "/")[1])?code=authentication_required"
        )
        let declined = try await stripe.chargeSavedMethod(payment(), method: method)
        #expect(declined.outcome == .failed("card declined (authentication_required: authentication_required)"))
        #expect(try await fake.problems() == [])
    }
}
