import BillingCore
import BillingServer
import Foundation
import Testing

@Suite struct ConfigurationTests {
    static let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("deploy/billingd.example.json").path

    func write(_ json: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("config-\(UUID().uuidString).json")
            .path
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func theDocumentedExampleIsValid() throws {
        let configuration = try BillingConfiguration.load(path: Self.example, environment: [:])
        #expect(configuration.validate() == [])
        #expect(configuration.listen.port == 7443)
        #expect(!configuration.sandbox.enabled)
    }

    @Test func everyFieldIsOptionalAndDefaultsAreTheSeeds() throws {
        let configuration = try BillingConfiguration.load(path: try write("{}"), environment: [:])
        #expect(configuration == BillingConfiguration())
        let policy = try configuration.paymentLimits().topUpPolicy(.usd)
        #expect(policy.minimum.amountMinorUnits == 50)
        #expect(policy.maximum.amountMinorUnits == 15_000_00)
        #expect(policy.presets.map(\.amountMinorUnits) == [100_00, 200_00, 500_00, 1000_00])
        #expect(configuration.poller.intervalSeconds == 60)
    }

    @Test func currenciesAndSystemLimitsAreMapsWhoseEntriesAreCheckedToo() throws {
        let good = try BillingConfiguration.load(
            path: try write(
                #"{"currencies": {"EUR": {"maximum": "900.00", "presets": []}}, "stripe": {"limits": {"CHF": {"minimum": "1.00"}}}}"#
            ),
            environment: [:]
        )
        let limits = try good.paymentLimits()
        #expect(try limits.topUpPolicy(.eur).maximum.amountMinorUnits == 900_00)
        #expect(try limits.topUpPolicy(.eur).minimum.amountMinorUnits == 50, "a field left out keeps its default")
        let chf = try Currency(code: "CHF")
        #expect(limits.range(.stripe, chf)?.minimum.amountMinorUnits == 1_00)
        #expect(limits.range(.stripe, chf)?.maximum.amountMinorUnits == 99_999_999, "the other bound keeps Stripe's")
        #expect(throws: ConfigurationError.self) {
            try BillingConfiguration.load(
                path: try write(#"{"currencies": {"EUR": {"minimun": "1.00"}}}"#),
                environment: [:]
            )
        }
        let unknownCurrency = try BillingConfiguration.load(
            path: try write(#"{"currencies": {"XXX": {}}}"#),
            environment: [:]
        )
        #expect(unknownCurrency.validate().contains { $0.contains("unknown currency") })
    }

    /// An issuer is set whole or not at all: a real name never prints beside
    /// the development placeholder's address and bank account.
    @Test func anInvoiceIssuerIsSetWholeAndChecked() throws {
        let unset = try BillingConfiguration.load(path: try write("{}"), environment: [:])
        #expect(unset.validate() == [] && unset.invoices.terms.issuer == InvoiceTerms.development.issuer)
        let partial = try BillingConfiguration.load(
            path: try write(#"{"invoices": {"issuer": {"name": "Real Company GmbH"}}}"#),
            environment: [:]
        )
        #expect(partial.validate().contains { $0.contains("invoices.issuer.bankLines is required") })
        #expect(partial.invoices.terms.issuer.lines.isEmpty, "no placeholder line under a real name")
        for (json, problem) in [
            (#"{"name": "   ", "bankLines": ["IBAN X"]}"#, "invoices.issuer.name is blank"),
            (
                #"{"name": "A", "bankLines": ["IBAN X"], "lines": ["ok", "\#(String(repeating: "x", count: 201))"]}"#,
                "invoices.issuer.lines[1] is longer than 200 bytes"
            ),
            (
                #"{"name": "A", "bankLines": ["IBAN X"], "legalText": "\#(String(repeating: "l\\n", count: 41))"}"#,
                "invoices.issuer.legalText has more than 40 lines"
            ),
        ] {
            let configuration = try BillingConfiguration.load(
                path: try write(#"{"invoices": {"issuer": \#(json)}}"#),
                environment: [:]
            )
            #expect(configuration.validate().contains(problem), "\(configuration.validate())")
        }
        let whole = try BillingConfiguration.load(path: Self.example, environment: [:])
        #expect(whole.invoices.terms.issuer.name == "Example Hosting Ltd" && whole.invoices.issuer.isSet)
    }

    @Test func environmentOverridesTheFile() throws {
        let configuration = try BillingConfiguration.load(
            path: try write(#"{"listen": {"port": 1}}"#),
            environment: [
                "BILLINGD_LISTEN": "0.0.0.0:9000", "BILLINGD_DATA_DIR": "/tmp/x", "BILLINGD_POLL_INTERVAL_SECONDS": "5",
            ]
        )
        #expect(configuration.listen.host == "0.0.0.0")
        #expect(configuration.listen.port == 9000)
        #expect(configuration.dataDirectory == "/tmp/x")
        #expect(configuration.poller.intervalSeconds == 5)
    }

    @Test func unknownSettingsWrongTypesAndBadJSONAreRefused() throws {
        for (json, expected) in [
            (#"{"listen": {"prot": 1}}"#, "unknown setting listen.prot"),
            (#"{"listen": {"port": "x"}}"#, "wrong type"),
            ("{not json", "not valid JSON"),
            ("[1, 2]", "must hold a JSON object"),
        ] {
            do {
                _ = try BillingConfiguration.load(path: try write(json), environment: [:])
                Issue.record("accepted \(json)")
            } catch {
                #expect("\(error)".contains(expected), "\(json): \(error)")
            }
        }
        #expect(throws: ConfigurationError.self) {
            try BillingConfiguration.load(path: "/nonexistent/billingd.json", environment: [:])
        }
        #expect(throws: ConfigurationError.self) {
            try BillingConfiguration.load(path: nil, environment: ["BILLINGD_LISTEN": "nope"])
        }
    }

    @Test func validationListsEveryProblem() throws {
        var configuration = BillingConfiguration()
        configuration.listen.port = 70_000
        configuration.topUp.minimum = "0"
        configuration.poller.concurrency = 0
        configuration.sandbox.host = "0.0.0.0"
        configuration.tls.certificate = "/only/one.pem"
        configuration.logLevel = "loud"
        let problems = configuration.validate()
        #expect(problems.count == 6, "\(problems)")
    }

    @Test func aSecretFileIsOneShortTokenInARegularFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("secrets-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func problem(_ file: String) -> String? {
            do {
                _ = try BillingConfiguration.secret(file: file, environment: "X", what: "secret", environment: [:])
                return nil
            } catch {
                return error.problems.first
            }
        }
        try "sk_test_good\n".write(toFile: "\(directory)/good", atomically: true, encoding: .utf8)
        #expect(problem("\(directory)/good") == nil)
        #expect(
            try BillingConfiguration.secret(file: "\(directory)/good", environment: "X", what: "s") == "sk_test_good"
        )
        try "two\nlines".write(toFile: "\(directory)/lines", atomically: true, encoding: .utf8)
        #expect(problem("\(directory)/lines")?.contains("one token") == true)
        // A huge file is refused from its size, unread.
        #expect(FileManager.default.createFile(atPath: "\(directory)/huge", contents: nil))
        let huge = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(directory)/huge"))
        try huge.truncate(atOffset: 1 << 30)
        try huge.close()
        #expect(problem("\(directory)/huge")?.contains("over 8 KiB") == true)
        // A FIFO with no writer is refused, not waited for; so is a folder.
        #expect(mkfifo("\(directory)/fifo", 0o600) == 0)
        #expect(problem("\(directory)/fifo")?.contains("not a regular file") == true)
        #expect(problem(directory)?.contains("not a regular file") == true)
        #expect(problem("\(directory)/missing")?.contains("cannot read") == true)
    }

    @Test func paymentSystemSettingsAndSecretsAreChecked() throws {
        let example = try BillingConfiguration.load(path: Self.example, environment: [:])
        #expect(example.stripe.enabled && example.paypal.enabled)
        #expect(
            example.secretProblems(environment: [:]) == [
                "cannot read the Stripe secret key file /etc/billingd/stripe-secret-key",
                "cannot read the PayPal client secret file /etc/billingd/paypal-client-secret",
                "cannot read the Stripe webhook signing secret file /etc/billingd/stripe-webhook-secret",
            ]
        )

        var configuration = BillingConfiguration()
        configuration.stripe.enabled = true
        configuration.stripe.baseURL = "http://api.stripe.com"
        configuration.stripe.timeoutSeconds = 0
        configuration.paypal.enabled = true
        configuration.paypal.paymentTimeToLiveSeconds = 4 * 3600
        configuration.paypal.brandName = String(repeating: "b", count: 128)
        let problems = configuration.validate()
        #expect(
            problems == [
                "stripe.baseURL must be https (or loopback for tests)",
                "stripe.timeoutSeconds must be 1 to 120",
                "paypal.clientID must be given (at most 256 characters)",
                "paypal.paymentTimeToLiveSeconds must be 60 to 10800 (PayPal forgets an unapproved order after 3 h)",
                "paypal.brandName is over 127 characters",
            ]
        )
        #expect(
            configuration.secretProblems(environment: ["STRIPE_SECRET_KEY": "sk_test_x", "PAYPAL_CLIENT_SECRET": ""])
                == [
                    "PayPal client secret missing: set PAYPAL_CLIENT_SECRET or give a key file"
                ]
        )
        #expect(
            configuration.secretProblems(environment: ["STRIPE_SECRET_KEY": "sk_test_x", "PAYPAL_CLIENT_SECRET": "s"])
                == []
        )
        #expect(BillingConfiguration().secretProblems(environment: [:]) == [], "nothing enabled, nothing needed")

        var hooks = BillingConfiguration()
        hooks.webhooks.enabled = true
        hooks.webhooks.maxBodyBytes = 10
        #expect(
            hooks.validate() == [
                "webhooks.enabled needs stripe or paypal enabled (they send them)",
                "webhooks.maxBodyBytes must be 1 KiB to 1 MiB",
            ]
        )
        hooks.paypal.enabled = true
        hooks.paypal.clientID = "client"
        hooks.paypal.webhookID = "WH-1"
        hooks.webhooks.maxBodyBytes = 4096
        #expect(
            hooks.validate() == [
                "paypal.webhookID must be the webhook's id from PayPal (letters and digits, at most 50)"
            ]
        )
        hooks.paypal.enabled = false
        hooks.stripe.enabled = true
        #expect(
            hooks.secretProblems(environment: ["STRIPE_SECRET_KEY": "sk_test_x"]) == [
                "Stripe webhook signing secret missing: set STRIPE_WEBHOOK_SECRET or give a key file"
            ]
        )
    }
}
