import BillingAPI
import BillingMessages
import BillingTLS
import BillingTestSupport
import Foundation
import Testing

@testable import BillingServer

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Stripe-Signature verification, with vectors computed independently
/// (Python's hmac module), then webhooks through a whole billingd.
@Suite struct StripeSignatureTests {
    static let body = Array(
        #"{"id":"evt_1","type":"checkout.session.completed","data":{"object":{"client_reference_id":"pay_1"}}}"#.utf8
    )
    static let valid = "98e217abf90030cf30a619a7516d7ff4b27982a0098fe6661c22b039f8109782"
    let webhook = StripeWebhook(secret: "whsec_test_secret")

    @Test func hmacSHA256MatchesAKnownAnswer() {
        let digest = MessageAuthentication.sha256(
            key: Array("key".utf8),
            message: Array("The quick brown fox jumps over the lazy dog".utf8)
        )
        #expect(
            digest.map { String(format: "%02x", $0) }.joined()
                == "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        )
        #expect(MessageAuthentication.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!MessageAuthentication.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!MessageAuthentication.constantTimeEqual([1, 2], [1, 2, 3]))
    }

    @Test func aValidSignatureWithinToleranceGivesTheEvent() throws {
        let event = try webhook.verify(
            body: Self.body,
            signature: "t=1700000000,v1=\(Self.valid)",
            now: 1_700_000_000 + 299
        )
        #expect(event == StripeWebhook.Event(id: "evt_1", type: "checkout.session.completed", paymentID: "pay_1"))
        // Stripe sends several v1 while a secret is being rolled: one match is enough.
        let rolled = "t=1700000000,v1=\(String(repeating: "0", count: 64)),v1=\(Self.valid),v0=abc"
        #expect(try webhook.verify(body: Self.body, signature: rolled, now: 1_700_000_000).paymentID == "pay_1")
    }

    @Test func everyForgeryIsRefused() {
        let cases: [(String?, [UInt8], Int64, StripeWebhook.Failure)] = [
            (nil, Self.body, 1_700_000_000, .missingSignature),
            ("", Self.body, 1_700_000_000, .missingSignature),
            ("garbage", Self.body, 1_700_000_000, .malformedSignature),
            ("t=abc,v1=\(Self.valid)", Self.body, 1_700_000_000, .malformedSignature),
            ("t=1700000000,v1=zz", Self.body, 1_700_000_000, .malformedSignature),
            ("t=1700000000", Self.body, 1_700_000_000, .malformedSignature),
            ("v1=\(Self.valid)", Self.body, 1_700_000_000, .malformedSignature),
            ("t=1700000000,v1=\(Self.valid)", Self.body, 1_700_000_000 + 301, .stale(seconds: 301)),
            ("t=1700000000,v1=\(Self.valid)", Self.body, 1_700_000_000 - 301, .stale(seconds: -301)),
            // Timestamps at the ends of Int64: stale, never a trap.
            ("t=-9223372036854775808,v1=\(Self.valid)", Self.body, 1_700_000_000, .stale(seconds: Int64.max)),
            ("t=9223372036854775807,v1=\(Self.valid)", Self.body, -1_700_000_000, .stale(seconds: Int64.min)),
            (
                "t=9223372036854775807,v1=\(Self.valid)", Self.body, 1_700_000_000,
                .stale(seconds: 1_700_000_000 - Int64.max)
            ),
            ("t=1700000001,v1=\(Self.valid)", Self.body, 1_700_000_000, .mismatch),
            ("t=1700000000,v1=\(Self.valid)", Self.body + [0x20], 1_700_000_000, .mismatch),
        ]
        for (header, body, now, expected) in cases {
            #expect(throws: expected, "\(header ?? "nil")") {
                try webhook.verify(body: body, signature: header, now: now)
            }
        }
        #expect(throws: StripeWebhook.Failure.mismatch) {
            try StripeWebhook(secret: "whsec_other").verify(
                body: Self.body,
                signature: "t=1700000000,v1=\(Self.valid)",
                now: 1_700_000_000
            )
        }
    }
}

@Suite(.serialized) struct WebhookEndToEndTests {
    @Test func aSignedEventCreditsAtOnceAndForgeriesChangeNothing() async throws {
        let fake = try await FakeProvider.stripe()
        defer { fake.stop() }
        let secrets = FileManager.default.temporaryDirectory.appendingPathComponent("webhook-\(UUID().uuidString)").path
        try "\(FakeProvider.stripeSecretKey)\n".write(toFile: secrets + "-key", atomically: true, encoding: .utf8)
        try "whsec_billingd_test\n".write(toFile: secrets + "-whsec", atomically: true, encoding: .utf8)
        defer {
            try? FileManager.default.removeItem(atPath: secrets + "-key")
            try? FileManager.default.removeItem(atPath: secrets + "-whsec")
        }
        // The poller checks once, at creation, then not for 10 minutes: only the webhook can credit.
        let f = try await ServerFixture(pollSeconds: 600) { configuration in
            configuration.stripe.enabled = true
            configuration.stripe.baseURL = fake.baseURL
            configuration.stripe.secretKeyFile = secrets + "-key"
            configuration.stripe.webhookSecretFile = secrets + "-whsec"
            configuration.webhooks.enabled = true
            configuration.webhooks.port = 0
        }
        let port = try #require(f.application.webhookPort)
        let url = "http://127.0.0.1:\(port)/webhooks/stripe"
        #expect(try await f.billing(["accounts", "create", "acc-hook", "--name", "Hook"]).status == 0)
        #expect(try await f.billing(["accounts", "add-payer", "acc-hook", "--name", "Jane"]).status == 0)
        let created = try json(
            try await f.billing(["topup", "--account", "acc-hook", "--amount", "40", "--system", "stripe", "--json"])
                .stdout
        )
        let id = try #require((created["payment"] as? [String: Any])?["id"] as? String)
        let session = try #require((created["redirect_url"] as? String)?.split(separator: "/").last.map(String.init))
        // The poller's check at creation is done (it found the session open) before the person pays.
        #expect(try await Self.firstCheckDone(id, f))
        try await fake.control("sessions/\(session)/pay")

        func deliver(_ secret: String, age: Int = 0) async throws -> Int {
            let query = "url=\(url)&secret=\(secret)&session=\(session)&age=\(age)"
            let answer = try await fake.control(
                "webhook?" + (query.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? query)
            )
            return (answer as? [String: Any])?["status"] as? Int ?? 0
        }
        func status() async throws -> String? {
            try json(try await f.billing(["payment", "show", id, "--json"]).stdout)["status"] as? String
        }
        #expect(try await deliver("whsec_forged") == 400)
        #expect(try await deliver("whsec_billingd_test", age: 600) == 400, "a replay of an old delivery")
        #expect(try await status() == "new", "refused deliveries change nothing")

        #expect(try await deliver("whsec_billingd_test") == 200)
        #expect(try await status() == "paid", "credited by the webhook, not the poller")
        #expect(try await deliver("whsec_billingd_test") == 200, "Stripe delivers again: harmless")
        let balance = try json(try await f.billing(["balance", "--account", "acc-hook", "--json"]).stdout)
        #expect((balance["balance"] as? [String: Any])?["amount_minor_units"] as? Int == 40_00, "credited once")
        // The audit trail names the payment system's webhook as who paid it.
        var audit = BillingV1.ListAuditRequest()
        audit.accountId = "acc-hook"
        audit.paymentId = id
        let trail = try await BillingV1.OperationsClient(transport: try f.transport("internal")).listAudit(audit)
        #expect(
            trail.entries.contains {
                $0.action == "payment.paid" && $0.actor == "webhook:stripe" && $0.via == "POST /webhooks/stripe"
            },
            "\(trail.entries)"
        )

        // Not a webhook route, not a POST, too big (refused from its header, before any body).
        #expect(try await Self.post("http://127.0.0.1:\(port)/webhooks/paypal", body: Data("{}".utf8)) == 404)
        #expect(
            try await Self.raw(port, "GET /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", f)
                .hasPrefix("HTTP/1.1 405")
        )
        for method in ["OPTIONS", "TRACE", "DELETE"] {
            #expect(
                try await Self.raw(
                    port,
                    "\(method) /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                    f
                ).hasPrefix("HTTP/1.1 405"),
                "\(method)"
            )
        }
        let tooBig = try await Self.raw(
            port,
            "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\n",
            f
        )
        #expect(tooBig.hasPrefix("HTTP/1.1 413"))
        #expect(tooBig.lowercased().contains("connection: close"), "the rest of the body is not read: \(tooBig)")
        #expect(tooBig.contains("is over"), "\(tooBig)")
        #expect(try await status() == "paid")

        // Money taken back after the payment: a partial refund, then a dispute that is won.
        let intent = try #require(
            (try await fake.control("sessions", method: "GET") as? [[String: Any]])?
                .first { $0["id"] as? String == session }?["payment_intent"] as? String
        )
        func event(_ type: String) async throws -> Int {
            let query = "url=\(url)&secret=whsec_billingd_test&intent=\(intent)&type=\(type)"
            let answer = try await fake.control(
                "webhook?" + (query.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? query)
            )
            return (answer as? [String: Any])?["status"] as? Int ?? 0
        }
        func balanceMinor() async throws -> Int? {
            (try json(try await f.billing(["balance", "--account", "acc-hook", "--json"]).stdout)["balance"]
                as? [String: Any])?["amount_minor_units"] as? Int
        }
        try await fake.control("refund/\(intent)?amount=1500")
        #expect(try await event("charge.refunded") == 200)
        #expect(try await balanceMinor() == 25_00, "the refund of 15.00 is taken from the balance")
        #expect(try await event("charge.refunded") == 200, "Stripe delivers again")
        #expect(try await balanceMinor() == 25_00, "once per refund")
        try await fake.control("dispute/\(intent)?status=needs_response")
        #expect(try await event("charge.dispute.created") == 200)
        #expect(
            try await balanceMinor() == 0,
            "the chargeback of 40.00 takes what the refund left of the payment: 25.00"
        )
        try await fake.control("dispute/\(intent)?status=won")
        #expect(try await event("charge.dispute.closed") == 200)
        #expect(try await balanceMinor() == 25_00, "the dispute won gives the chargeback back")
        #expect(try await status() == "paid", "the payment stays Paid")
        var notifications = BillingV1.ListNotificationsRequest()
        notifications.accountId = "acc-hook"
        let titles = try await f.clients("internal").balance.listNotifications(notifications).notifications.map(\.title)
        #expect(titles == ["Dispute resolved", "Payment disputed", "Payment refunded"], "\(titles)")

        // The signing secret rotated at Stripe and in its file: a reload (SIGHUP) takes it.
        try "whsec_rotated\n".write(toFile: secrets + "-whsec", atomically: true, encoding: .utf8)
        #expect(try await deliver("whsec_rotated") == 400, "not before the reload")
        #expect(await f.application.reload())
        #expect(try await deliver("whsec_rotated") == 200)
        #expect(try await deliver("whsec_billingd_test") == 400, "the old secret no longer signs")
        // A rotation gone wrong (the file emptied) keeps the current secret.
        try "\n".write(toFile: secrets + "-whsec", atomically: true, encoding: .utf8)
        #expect(await f.application.reload() == false)
        #expect(try await deliver("whsec_rotated") == 200)
        #expect(try await fake.problems() == [])
        await f.stop()
    }

    /// Waits (bounded) until the poller has checked the new payment once: with a
    /// 10-minute interval it will not look again, so only a webhook can credit it.
    static func firstCheckDone(_ id: String, _ f: ServerFixture) async throws -> Bool {
        let deadline = ContinuousClock.now.advanced(by: .seconds(120))
        while try await f.application.store.payment(id).checkAttempts == 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        return try await f.application.store.payment(id).checkAttempts == 1
    }

    static func raw(_ port: Int, _ request: String, _ f: ServerFixture) async throws -> String {
        try await RawHTTP.exchange(host: "127.0.0.1", port: port, request: request, group: f.clientGroup)
    }

    static func post(_ url: String, body: Data) async throws -> Int {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.httpBody = body
        // The completion-handler API (see ProviderHTTP.exchange).
        return try await withCheckedThrowingContinuation { continuation in
            URLSession.shared.dataTask(with: request) { _, response, error in
                if let error {
                    continuation.resume(throwing: error)
                } else {
                    continuation.resume(returning: (response as? HTTPURLResponse)?.statusCode ?? 0)
                }
            }.resume()
        }
    }

    /// billingd with the fake PayPal and its webhook endpoint; the poller
    /// checks once, at creation, then not for 10 minutes.
    static func payPalBillingd(_ fake: FakeProvider) async throws -> ServerFixture {
        let secret = FileManager.default.temporaryDirectory.appendingPathComponent("paypal-\(UUID().uuidString)").path
        try "\(FakeProvider.paypalClientSecret)\n".write(toFile: secret, atomically: true, encoding: .utf8)
        return try await ServerFixture(pollSeconds: 600) { configuration in
            configuration.paypal.enabled = true
            configuration.paypal.baseURL = fake.baseURL
            configuration.paypal.clientID = FakeProvider.paypalClientID
            configuration.paypal.clientSecretFile = secret
            configuration.paypal.webhookID = "WH1FAKE"
            configuration.webhooks.enabled = true
            configuration.webhooks.port = 0
        }
    }

    @Test func aVaultIdPayPalSendsAfterTheCaptureConfirmsTheSavedWallet() async throws {
        let fake = try await FakeProvider.paypal()
        defer { fake.stop() }
        let f = try await Self.payPalBillingd(fake)
        let port = try #require(f.application.webhookPort)
        let url = "http://127.0.0.1:\(port)/webhooks/paypal"
        #expect(try await f.billing(["accounts", "create", "acc-late-vault", "--name", "Late"]).status == 0)
        #expect(try await f.billing(["accounts", "add-payer", "acc-late-vault", "--name", "Jane"]).status == 0)
        try await fake.control("vault/late")
        let created = try json(
            try await f.billing([
                "topup", "--account", "acc-late-vault", "--amount", "30", "--system", "paypal",
                "--save-method", "--json",
            ]).stdout
        )
        let id = try #require((created["payment"] as? [String: Any])?["id"] as? String)
        let order = try #require(
            URLComponents(string: created["redirect_url"] as? String ?? "")?.queryItems?.first { $0.name == "token" }?
                .value
        )
        #expect(try await Self.firstCheckDone(id, f))
        try await fake.control("orders/\(order)/approve")
        func deliver(_ type: String) async throws -> Int {
            let query = "url=\(url)&order=\(order)&type=\(type)"
            let answer = try await fake.control(
                "webhook?" + (query.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? query)
            )
            return (answer as? [String: Any])?["status"] as? Int ?? 0
        }
        func methods() async throws -> [BillingV1.PaymentMethod] {
            var list = BillingV1.ListPaymentMethodsRequest()
            list.payerId = try #require(
                try await f.clients("internal").methods.listPayers(
                    {
                        var r = BillingV1.ListPayersRequest()
                        r.accountId = "acc-late-vault"
                        return r
                    }()
                ).payers.first?.id
            )
            list.includeRemoved = true
            return try await f.clients("internal").methods.listPaymentMethods(list).methods
        }
        #expect(try await deliver("CHECKOUT.ORDER.APPROVED") == 200)
        #expect(try json(try await f.billing(["payment", "show", id, "--json"]).stdout)["status"] as? String == "paid")
        #expect(
            try await methods().map(\.status) == [.pending],
            "vault APPROVED with no id: not a chargeable method yet"
        )
        #expect(try await deliver("VAULT.PAYMENT-TOKEN.CREATED") == 200)
        let saved = try await methods()
        #expect(saved.map(\.status) == [.confirmed], "the late vault id confirms it")
        #expect(saved.first?.displayName == "PayPal (buyer@example.com)")
        // And it pays at once.
        let charged = try json(
            try await f.billing(["topup", "--account", "acc-late-vault", "--amount", "12", "--json"]).stdout
        )
        #expect((charged["payment"] as? [String: Any])?["status"] as? String == "paid")
        #expect(try await fake.problems() == [])
        await f.stop()
    }

    @Test func aPayPalNotificationVerifiedByPayPalCapturesAtOnce() async throws {
        let fake = try await FakeProvider.paypal()
        defer { fake.stop() }
        let f = try await Self.payPalBillingd(fake)
        let port = try #require(f.application.webhookPort)
        let url = "http://127.0.0.1:\(port)/webhooks/paypal"
        #expect(try await f.billing(["accounts", "create", "acc-pp-hook", "--name", "Hook"]).status == 0)
        #expect(try await f.billing(["accounts", "add-payer", "acc-pp-hook", "--name", "Jane"]).status == 0)
        let created = try json(
            try await f.billing(["topup", "--account", "acc-pp-hook", "--amount", "30", "--system", "paypal", "--json"])
                .stdout
        )
        let id = try #require((created["payment"] as? [String: Any])?["id"] as? String)
        let order = try #require(
            URLComponents(string: created["redirect_url"] as? String ?? "")?.queryItems?.first { $0.name == "token" }?
                .value
        )
        #expect(try await Self.firstCheckDone(id, f))
        try await fake.control("orders/\(order)/approve")

        func deliver(_ extra: String = "") async throws -> Int {
            let query = "url=\(url)&order=\(order)" + extra
            let answer = try await fake.control(
                "webhook?" + (query.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? query)
            )
            return (answer as? [String: Any])?["status"] as? Int ?? 0
        }
        func status() async throws -> String? {
            try json(try await f.billing(["payment", "show", id, "--json"]).stdout)["status"] as? String
        }
        #expect(try await deliver("&forge=1") == 400)
        #expect(try await deliver("&webhook_id=WHOTHER") == 400, "sent to another endpoint")
        #expect(try await Self.post(url, body: Data("{}".utf8)) == 400, "no transmission headers")
        #expect(try await status() == "new")
        #expect(try await fake.charges().isEmpty, "nothing captured on a forgery")

        #expect(try await deliver("&type=CHECKOUT.ORDER.APPROVED") == 200)
        #expect(try await status() == "paid", "approved, verified, captured by billingd at once")
        #expect(try await deliver("&type=PAYMENT.CAPTURE.COMPLETED") == 200)
        #expect(try await fake.charges().count == 1)
        let balance = try json(try await f.billing(["balance", "--account", "acc-pp-hook", "--json"]).stdout)
        #expect((balance["balance"] as? [String: Any])?["amount_minor_units"] as? Int == 30_00)

        // A partial refund, then a chargeback that holds the rest, then the dispute won.
        func balanceMinor() async throws -> Int? {
            (try json(try await f.billing(["balance", "--account", "acc-pp-hook", "--json"]).stdout)["balance"]
                as? [String: Any])?["amount_minor_units"] as? Int
        }
        try await fake.control("refund/\(order)?value=10.00")
        #expect(try await deliver("&type=PAYMENT.CAPTURE.REFUNDED") == 200)
        #expect(try await balanceMinor() == 20_00)
        #expect(try await deliver("&type=PAYMENT.CAPTURE.REFUNDED") == 200)
        #expect(try await balanceMinor() == 20_00, "once per refund")
        try await fake.control("reverse/\(order)")
        #expect(try await deliver("&type=PAYMENT.CAPTURE.REVERSED") == 200)
        #expect(try await balanceMinor() == 0, "the chargeback takes what the refund left")
        try await fake.control("reinstate/\(order)")
        #expect(try await deliver("&type=PAYMENT.CAPTURE.COMPLETED") == 200)
        #expect(try await balanceMinor() == 20_00, "the dispute won gives it back")
        #expect(try await status() == "paid")
        #expect(try await fake.problems() == [])
        await f.stop()
    }
}
