public import BillingCore
public import BillingPostgres
public import Foundation

/// billingd's configuration: a JSON file (example: deploy/billingd.example.json),
/// then environment overrides, then defaults. Every field is optional in the
/// file; `validate()` lists every problem at once.
public struct BillingConfiguration: Sendable, Codable, Hashable {
    public struct Listen: Sendable, Codable, Hashable {
        public var host: String = "127.0.0.1"
        public var port: Int = 7443
    }

    public struct TLS: Sendable, Codable, Hashable {
        /// PEM files; when all three are empty, the development set in
        /// `<dataDirectory>/tls` is used (and created on first start).
        public var certificate: String = ""
        public var privateKey: String = ""
        public var clientCA: String = ""
        /// A handshake takes milliseconds; 10 s leaves room for a client on a
        /// loaded machine, and connections that never handshake are bounded
        /// by the waiting room (limits.maxUnauthenticatedConnections) anyway.
        public var handshakeTimeoutSeconds: Double = 10
    }

    public struct TopUp: Sendable, Codable, Hashable {
        public var minimum: String = "0.50"
        public var maximum: String = "15000.00"
        public var presets: [String] = ["100", "200", "500", "1000"]

        public init(
            minimum: String = "0.50",
            maximum: String = "15000.00",
            presets: [String] = ["100", "200", "500", "1000"]
        ) {
            self.minimum = minimum
            self.maximum = maximum
            self.presets = presets
        }
    }

    public struct Poller: Sendable, Codable, Hashable {
        /// How often a New payment is checked at its payment system (the seed: every minute).
        public var intervalSeconds: Double = 60
        /// Checks running at once; the providers' rate limits are the bound.
        public var concurrency: Int = 8
        /// A claim lasts this long; another instance may take over after.
        public var leaseSeconds: Double = 120
        /// Longest wait between checks of a payment whose provider keeps failing.
        public var maxBackoffSeconds: Double = 3600
        /// A payment-system payment the provider never created (it was down
        /// at creation) is cancelled after this long.
        public var unstartedPaymentGraceSeconds: Double = 600
        /// A saved-method charge whose answer never came (timeouts) is asked
        /// again, under its idempotency key, for this long before it is
        /// cancelled: long enough that a charge made at the provider is found,
        /// inside PayPal's 6 h request-id memory (Stripe keeps keys 24 h).
        public var unstartedChargeGraceSeconds: Double = 18_000
        /// A method saved with a Paid payment whose payment system never sent
        /// it (PayPal sends a vault id by webhook, sometimes late) ends Failed
        /// after this long, with a notification.
        public var pendingMethodTimeoutSeconds: Double = 86_400
        /// A payment the payment system holds for the merchant to act on (a
        /// PayPal capture PENDING for the receiving account's settings) is
        /// reported in the log at critical level after this long.
        public var heldNoticeSeconds: Double = 3600
        /// A failed automatic renewal is tried again after this long, until
        /// the service expires.
        public var autoRenewalRetrySeconds: Double = 86_400
    }

    public struct Limits: Sendable, Codable, Hashable {
        public var maxFrameBytes: Int = 4 << 20
        public var maxMetadataBytes: Int = 8 << 10
        public var maxConcurrentStreams: Int = 128
        public var maxConnections: Int = 1024
        /// Of maxConnections, kept for internal services and operators.
        public var reservedPrivilegedConnections: Int = 128
        /// Connections of one certificate identity.
        public var maxConnectionsPerPeer: Int = 256
        /// Connections still in their TLS handshake (the oldest is closed past it).
        public var maxUnauthenticatedConnections: Int = 128
        public var idleTimeoutSeconds: Double = 300
        public var streamWriteTimeoutSeconds: Double = 30
        /// A watcher further behind than this many events is ended
        /// RESOURCE_EXHAUSTED and resumes from its cursor.
        public var maxSubscriberLagEvents: Int = 100_000
        /// Grace period for running calls at shutdown.
        public var shutdownGraceSeconds: Double = 10
    }

    /// What a payment system accepts in one currency, as decimal strings
    /// ("0.50", "999999.99"); either may be left out to keep the default.
    public struct AmountLimits: Sendable, Codable, Hashable {
        public var minimum: String = ""
        public var maximum: String = ""
    }

    public struct Sandbox: Sendable, Codable, Hashable {
        public var enabled: Bool = true
        /// Per currency code: overrides of the sandbox's limits.
        public var limits: [String: AmountLimits] = [:]
        /// The hosted page; loopback only (plain HTTP).
        public var host: String = "127.0.0.1"
        public var port: Int = 7081
        public var paymentTimeToLiveSeconds: Double = 3600
        public var latencyMilliseconds: Int = 0
        public var unavailable: Bool = false
        public var declineSavedMethodCharges: Bool = false
        /// The poller's checks of sandbox payments a second at most; 0: no limit.
        public var pollerChecksPerSecond: Double = 0
    }

    public struct Stripe: Sendable, Codable, Hashable {
        public var enabled: Bool = false
        public var baseURL: String = "https://api.stripe.com"
        /// A file holding the secret key; else the environment variable below.
        public var secretKeyFile: String = ""
        public var secretKeyEnvironment: String = "STRIPE_SECRET_KEY"
        public var timeoutSeconds: Double = 15
        public var paymentTimeToLiveSeconds: Double = 3600
        /// What the Checkout offers ("card", "us_bank_account", "sepa_debit",
        /// "link", …): said here, not left to the Stripe Dashboard.
        public var paymentMethodTypes: [String] = ["card"]
        /// Per currency code: overrides of Stripe's limits (its minimum charge
        /// depends on the account's settlement currency: 0.50 USD may be too
        /// little for a CHF account).
        public var limits: [String: AmountLimits] = [:]
        /// The webhook endpoint's signing secret (whsec_…), when `webhooks` is enabled.
        public var webhookSecretFile: String = ""
        public var webhookSecretEnvironment: String = "STRIPE_WEBHOOK_SECRET"
        /// The poller's checks of Stripe payments a second at most (0: no
        /// limit). Stripe allows 25 reads a second in test mode and 100 in
        /// live mode; the rest is left for what RPCs and webhooks ask.
        public var pollerChecksPerSecond: Double = 20
    }

    /// `POST /webhooks/stripe` and `POST /webhooks/paypal` (for the enabled
    /// systems) over plain HTTP, for a TLS-terminating proxy in front. Events
    /// only make billingd check a payment at once; the poller checks New
    /// payments without them.
    public struct Webhooks: Sendable, Codable, Hashable {
        public var enabled: Bool = false
        public var host: String = "127.0.0.1"
        public var port: Int = 7082
        /// Events are a few KiB (the object they concern, once); 256 KiB leaves
        /// room for large ones without letting a sender fill memory.
        public var maxBodyBytes: Int = 262_144
    }

    /// `GET /metrics` in Prometheus's text format, on a port of its own
    /// bound to a loopback address (the scraper runs on the machine or
    /// reaches it through an agent; the metrics are not for the network).
    public struct Metrics: Sendable, Codable, Hashable {
        public var enabled: Bool = false
        public var host: String = "127.0.0.1"
        public var port: Int = 9464
    }

    public struct PayPal: Sendable, Codable, Hashable {
        public var enabled: Bool = false
        /// https://api-m.paypal.com, or https://api-m.sandbox.paypal.com for PayPal's sandbox.
        public var baseURL: String = "https://api-m.paypal.com"
        public var clientID: String = ""
        /// A file holding the client secret; else the environment variable below.
        public var clientSecretFile: String = ""
        public var clientSecretEnvironment: String = "PAYPAL_CLIENT_SECRET"
        public var timeoutSeconds: Double = 15
        /// At most 3 hours: PayPal forgets an order nobody approved by then.
        public var paymentTimeToLiveSeconds: Double = 3600
        /// Shown instead of the business name on PayPal's page; empty keeps it.
        public var brandName: String = ""
        /// Per currency code: overrides of PayPal's limits (10,000 by default;
        /// a PayPal account's own limits may differ).
        public var limits: [String: AmountLimits] = [:]
        /// The id PayPal gave billingd's webhook endpoint, when `webhooks` is enabled.
        public var webhookID: String = ""
        /// The poller's checks of PayPal payments a second at most (0: no
        /// limit); PayPal's limits are not published, and it answers 429 past them.
        public var pollerChecksPerSecond: Double = 20
    }

    /// Where the database, the development certificates and the sandbox state live.
    public var dataDirectory: String = "./billingd-data"
    public var listen = Listen()
    public var tls = TLS()
    /// The SQLite file; empty means `<dataDirectory>/billing.sqlite`.
    public var databasePath: String = ""
    public var storage = Storage()
    /// The currency of accounts created without one, whose top-up limits are `topUp`.
    public var currency: String = "USD"
    public var idempotencyKeyLifetimeSeconds: Double = 86_400
    public var topUp = TopUp()
    /// Further currencies accounts may be created in, each with its own
    /// top-up limits and presets (e.g. {"EUR": {"minimum": "0.50", …}}).
    /// Accounts are only ever in `currency` or one of these.
    public var currencies: [String: TopUp] = [:]
    public var poller = Poller()
    public var limits = Limits()
    public var sandbox = Sandbox()
    public var stripe = Stripe()
    public var paypal = PayPal()
    public var webhooks = Webhooks()
    public var metrics = Metrics()
    public var invoices = Invoices()
    /// "info", "debug", "trace", "notice", "warning", "error".
    public var logLevel: String = "info"
    public var logging = Logging()

    /// Invoices issued for invoice payments (docs/INVOICES.md): the issuer's
    /// details printed on each, the number series and the payment terms.
    public struct Invoices: Sendable, Codable, Hashable {
        public var issuer = Issuer()
        /// Numbers are "<prefix><year>-000001" (yearly reset) or "<prefix>000001".
        public var numberPrefix: String = InvoiceTerms.development.numberPrefix
        public var yearlyReset: Bool = InvoiceTerms.development.yearlyReset
        public var dueDays: Int = InvoiceTerms.development.dueDays
        /// An unpaid invoice ends Cancelled (void) this many days after its due date.
        public var graceDays: Int = InvoiceTerms.development.graceDays

        /// Nothing by default: an issuer is set whole or not at all (no
        /// placeholder line ever mixes into a real one). Unset, invoices
        /// carry the development placeholder, which says it is one.
        public struct Issuer: Sendable, Codable, Hashable {
            public var name: String = ""
            public var lines: [String] = []
            public var bankLines: [String] = []
            public var legalText: String = ""

            public var isSet: Bool { self != Issuer() }
        }

        /// The first number of this year's series, for people: "INV-2026-000001".
        public var sampleNumber: String {
            BillingCore.Invoices.number(
                series: BillingCore.Invoices.series(terms, nowMs: Int64(Date().timeIntervalSince1970 * 1000)),
                sequence: 1
            )
        }

        public var terms: InvoiceTerms {
            InvoiceTerms(
                issuer: issuer.isSet
                    ? InvoiceIssuer(
                        name: issuer.name,
                        lines: issuer.lines,
                        bankLines: issuer.bankLines,
                        legalText: issuer.legalText
                    ) : InvoiceTerms.development.issuer,
                numberPrefix: numberPrefix,
                yearlyReset: yearlyReset,
                dueDays: dueDays,
                graceDays: graceDays
            )
        }
    }

    /// Where the books are kept: the SQLite file (`databasePath`) unless
    /// `postgres.url` is set.
    public struct Storage: Sendable, Codable, Hashable {
        public struct Postgres: Sendable, Codable, Hashable {
            /// `postgres://user@host:5432/billing` (a Unix socket:
            /// `postgres://user@/billing?host=/run/postgresql`); no password
            /// in it. Empty: SQLite.
            public var url: String = ""
            /// The password: this file if given, else this environment
            /// variable if set, else none (peer or trust login).
            public var passwordFile: String = ""
            public var passwordEnvironment: String = "BILLINGD_POSTGRES_PASSWORD"
            public var tls = TLS()
            /// Connections for reads (and claims); one more writes, one more listens.
            public var poolSize: Int = 8
            public var statementTimeoutSeconds: Double = 30
            public var connectTimeoutSeconds: Double = 10
        }

        public struct TLS: Sendable, Codable, Hashable {
            /// "disable" (a socket or a trusted network) or "verify-full"
            /// (TLS required, certificate and host name checked).
            public var mode: String = "disable"
            /// The CA that signs the server's certificate; empty: the system's roots.
            public var caFile: String = ""
        }

        public var postgres = Postgres()
    }

    public struct Logging: Sendable, Codable, Hashable {
        /// "text" (for people, the default) or "json" (one object per line,
        /// for log shippers).
        public var format: String = "text"
    }

    public init() {}

    /// Reads `path` (if given), then applies `environment` overrides
    /// (`BILLINGD_DATA_DIR`, `BILLINGD_LISTEN` as host:port, `BILLINGD_LOG_LEVEL`, `BILLINGD_LOG_FORMAT`,
    /// `BILLINGD_POLL_INTERVAL_SECONDS`, `BILLINGD_SANDBOX_PORT`).
    ///
    /// - Throws: `ConfigurationError` naming the file and what is wrong.
    public static func load(
        path: String?,
        environment: [String: String]
    ) throws(ConfigurationError) -> BillingConfiguration {
        guard let path else { return try load(data: nil, source: "", environment: environment) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(problems: ["cannot read configuration file \(path)"])
        }
        return try load(data: data, source: path, environment: environment)
    }

    /// The same from the file's bytes (`source` names them in problems);
    /// nil data means no file. What the configuration fuzz target drives.
    public static func load(
        data: Data?,
        source: String,
        environment: [String: String]
    ) throws(ConfigurationError) -> BillingConfiguration {
        var configuration = BillingConfiguration()
        if let data {
            // 1 MiB: a configuration is a few KiB; anything larger is a mistake.
            guard data.count <= 1 << 20 else {
                throw ConfigurationError(problems: ["configuration file \(source) is over 1 MiB"])
            }
            configuration = try decodeOverDefaults(data, path: source)
        }
        if let dir = environment["BILLINGD_DATA_DIR"] { configuration.dataDirectory = dir }
        if let listen = environment["BILLINGD_LISTEN"] {
            let parts = listen.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let port = Int(parts[1]) else {
                throw ConfigurationError(problems: ["BILLINGD_LISTEN must be host:port, not \"\(listen.prefix(64))\""])
            }
            configuration.listen = Listen(host: String(parts[0]), port: port)
        }
        if let level = environment["BILLINGD_LOG_LEVEL"] { configuration.logLevel = level }
        if let format = environment["BILLINGD_LOG_FORMAT"] { configuration.logging.format = format }
        if let interval = environment["BILLINGD_POLL_INTERVAL_SECONDS"] {
            guard let seconds = Double(interval) else {
                throw ConfigurationError(problems: ["BILLINGD_POLL_INTERVAL_SECONDS must be a number"])
            }
            configuration.poller.intervalSeconds = seconds
        }
        if let port = environment["BILLINGD_SANDBOX_PORT"] {
            guard let value = Int(port) else {
                throw ConfigurationError(problems: ["BILLINGD_SANDBOX_PORT must be a port number"])
            }
            configuration.sandbox.port = value
        }
        return configuration
    }

    /// Every problem, or none.
    public func validate() -> [String] {
        var problems: [String] = []
        if dataDirectory.isEmpty { problems.append("dataDirectory is empty") }
        do {
            try invoices.terms.check()
        } catch {
            problems.append(error.description)
        }
        if !(0...65535).contains(listen.port) { problems.append("listen.port \(listen.port) is not a port") }
        problems += storageProblems()
        if !(0...65535).contains(sandbox.port) { problems.append("sandbox.port \(sandbox.port) is not a port") }
        let tlsGiven = [tls.certificate, tls.privateKey, tls.clientCA].filter { !$0.isEmpty }.count
        if tlsGiven != 0 && tlsGiven != 3 {
            problems.append("tls: give certificate, privateKey and clientCA together, or none for the development set")
        }
        if sandbox.enabled && !["127.0.0.1", "::1", "localhost"].contains(sandbox.host) {
            problems.append("sandbox.host must be loopback (it serves plain HTTP)")
        }
        do {
            _ = try paymentLimits()
        } catch {
            problems.append("\(error)")
        }
        if stripe.enabled {
            if !Self.isProviderURL(stripe.baseURL) {
                problems.append("stripe.baseURL must be https (or loopback for tests)")
            }
            if !(1...120).contains(stripe.timeoutSeconds) { problems.append("stripe.timeoutSeconds must be 1 to 120") }
            if !(1...20).contains(stripe.paymentMethodTypes.count)
                || !stripe.paymentMethodTypes.allSatisfy({ type in
                    (1...40).contains(type.count) && type.allSatisfy { $0 == "_" || ($0.isASCII && $0.isLowercase) }
                })
            {
                problems.append(
                    "stripe.paymentMethodTypes must be 1 to 20 of Stripe's type names (card, us_bank_account, …)"
                )
            }
            if stripe.paymentTimeToLiveSeconds < 60 || stripe.paymentTimeToLiveSeconds > 86_400 {
                problems.append(
                    "stripe.paymentTimeToLiveSeconds must be 60 to 86400 (Stripe keeps a session 24 h at most)"
                )
            }
        }
        if paypal.enabled {
            if !Self.isProviderURL(paypal.baseURL) {
                problems.append("paypal.baseURL must be https (or loopback for tests)")
            }
            if paypal.clientID.isEmpty || paypal.clientID.count > 256 {
                problems.append("paypal.clientID must be given (at most 256 characters)")
            }
            if !(1...120).contains(paypal.timeoutSeconds) { problems.append("paypal.timeoutSeconds must be 1 to 120") }
            if paypal.paymentTimeToLiveSeconds < 60 || paypal.paymentTimeToLiveSeconds > 10_800 {
                problems.append(
                    "paypal.paymentTimeToLiveSeconds must be 60 to 10800 (PayPal forgets an unapproved order after 3 h)"
                )
            }
            if paypal.brandName.count > 127 { problems.append("paypal.brandName is over 127 characters") }
        }
        if webhooks.enabled {
            if !stripe.enabled && !paypal.enabled {
                problems.append("webhooks.enabled needs stripe or paypal enabled (they send them)")
            }
            if paypal.enabled
                && (paypal.webhookID.isEmpty || paypal.webhookID.count > 50
                    || !paypal.webhookID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }))
            {
                problems.append(
                    "paypal.webhookID must be the webhook's id from PayPal (letters and digits, at most 50)"
                )
            }
            if !(0...65535).contains(webhooks.port) { problems.append("webhooks.port \(webhooks.port) is not a port") }
            if !(1024...(1 << 20)).contains(webhooks.maxBodyBytes) {
                problems.append("webhooks.maxBodyBytes must be 1 KiB to 1 MiB")
            }
        }
        if metrics.enabled {
            if !(0...65535).contains(metrics.port) { problems.append("metrics.port \(metrics.port) is not a port") }
            let octets = metrics.host.split(separator: ".", omittingEmptySubsequences: false)
            let loopback =
                metrics.host == "localhost" || metrics.host == "::1"
                || (octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil })
            if !loopback {
                problems.append("metrics.host must be a loopback address (127.0.0.1, ::1 or localhost)")
            }
        }
        if poller.intervalSeconds <= 0 || poller.intervalSeconds > 86_400 {
            problems.append("poller.intervalSeconds must be in (0, 86400]")
        }
        // Four times this is claimed at once, and a claim takes at most 1,000.
        if !(1...250).contains(poller.concurrency) { problems.append("poller.concurrency must be 1 to 250") }
        if poller.unstartedPaymentGraceSeconds <= 0 {
            problems.append("poller.unstartedPaymentGraceSeconds must be positive")
        }
        if poller.unstartedChargeGraceSeconds <= 0 || poller.unstartedChargeGraceSeconds > 21_600 {
            problems.append(
                "poller.unstartedChargeGraceSeconds must be in (0, 21600]: a retry after PayPal forgot the request id could charge twice"
            )
        }
        if limits.maxFrameBytes < 1024 || limits.maxFrameBytes > 4 << 20 {
            problems.append("limits.maxFrameBytes must be 1 KiB to 4 MiB")
        }
        if limits.maxConcurrentStreams < 1 { problems.append("limits.maxConcurrentStreams must be positive") }
        if !(1...100_000).contains(limits.maxConnections) {
            problems.append("limits.maxConnections must be 1 to 100000")
        }
        if !(0..<max(1, limits.maxConnections)).contains(limits.reservedPrivilegedConnections) {
            problems.append("limits.reservedPrivilegedConnections must be 0 to maxConnections - 1")
        }
        if limits.maxConnectionsPerPeer < 1 { problems.append("limits.maxConnectionsPerPeer must be positive") }
        if !(1...100_000).contains(limits.maxUnauthenticatedConnections) {
            problems.append("limits.maxUnauthenticatedConnections must be 1 to 100000")
        }
        if limits.maxSubscriberLagEvents < 1 { problems.append("limits.maxSubscriberLagEvents must be positive") }
        // Every duration, so that none becomes a trap or a wait of years when
        // it is turned into a Duration.
        let month = 30 * 86_400.0
        let durations: [(String, Double, ClosedRange<Double>)] = [
            ("tls.handshakeTimeoutSeconds", tls.handshakeTimeoutSeconds, 0.1...120.0),
            ("limits.idleTimeoutSeconds", limits.idleTimeoutSeconds, 0.1...86_400.0),
            ("limits.streamWriteTimeoutSeconds", limits.streamWriteTimeoutSeconds, 0.1...3_600.0),
            ("limits.shutdownGraceSeconds", limits.shutdownGraceSeconds, 0.0...3_600.0),
            ("poller.leaseSeconds", poller.leaseSeconds, 1.0...86_400.0),
            ("poller.maxBackoffSeconds", poller.maxBackoffSeconds, 1.0...86_400.0),
            ("poller.unstartedPaymentGraceSeconds", poller.unstartedPaymentGraceSeconds, 1.0...86_400.0),
            ("poller.pendingMethodTimeoutSeconds", poller.pendingMethodTimeoutSeconds, 60.0...month),
            ("poller.heldNoticeSeconds", poller.heldNoticeSeconds, 0.0...month),
            ("poller.autoRenewalRetrySeconds", poller.autoRenewalRetrySeconds, 60.0...month),
            ("sandbox.paymentTimeToLiveSeconds", sandbox.paymentTimeToLiveSeconds, 1.0...86_400.0),
            ("idempotencyKeyLifetimeSeconds", idempotencyKeyLifetimeSeconds, 60.0...month),
        ]
        for (name, value, range) in durations where !range.contains(value) {
            problems.append("\(name) must be \(range.lowerBound) to \(range.upperBound) seconds")
        }
        for (name, value) in [
            ("sandbox.pollerChecksPerSecond", sandbox.pollerChecksPerSecond),
            ("stripe.pollerChecksPerSecond", stripe.pollerChecksPerSecond),
            ("paypal.pollerChecksPerSecond", paypal.pollerChecksPerSecond),
        ] where !(value == 0 || (0.01...10_000.0).contains(value)) {
            problems.append("\(name) must be 0 (no limit) or 0.01 to 10000 checks a second")
        }
        if !(0...60_000).contains(sandbox.latencyMilliseconds) {
            problems.append("sandbox.latencyMilliseconds must be 0 to 60000")
        }
        if !["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel) {
            problems.append("logLevel \"\(logLevel.prefix(16))\" is not a level")
        }
        if !["text", "json"].contains(logging.format) {
            problems.append("logging.format \"\(logging.format.prefix(16))\" is not text or json")
        }
        return problems
    }

    /// Currencies, their top-up limits and each payment system's limits,
    /// from `currency`/`topUp`, `currencies` and the systems' `limits`.
    ///
    /// - Throws: `invalidArgument` naming the setting that is wrong.
    public func paymentLimits() throws(BillingError) -> PaymentLimits {
        let defaultCurrency = try Self.named(currency, "currency")
        var topUps = [defaultCurrency: try Self.policy(topUp, defaultCurrency, "topUp")]
        for (code, policy) in currencies {
            let other = try Self.named(code, "currencies.\(code.prefix(8))")
            topUps[other] = try Self.policy(policy, other, "currencies.\(code)")
        }
        var systems: [PaymentSystem: [Currency: AmountRange]] = [:]
        for (system, overrides) in [
            (PaymentSystem.sandbox, sandbox.limits), (.stripe, stripe.limits), (.paypal, paypal.limits),
        ] {
            var ranges = PaymentLimits.defaults(for: system)
            for (code, limits) in overrides {
                let what = "\(system.rawValue).limits.\(code.prefix(8))"
                let currency = try Self.named(code, what)
                let minimum =
                    limits.minimum.isEmpty
                    ? ranges[currency]?.minimum : try Self.amount(limits.minimum, currency, "\(what).minimum")
                let maximum =
                    limits.maximum.isEmpty
                    ? ranges[currency]?.maximum : try Self.amount(limits.maximum, currency, "\(what).maximum")
                guard let minimum, let maximum, minimum.amountMinorUnits > 0, minimum <= maximum else {
                    throw .invalidArgument(
                        "\(what): give 0 < minimum <= maximum (\(system.displayName) has no default in \(code))"
                    )
                }
                ranges[currency] = AmountRange(minimum: minimum, maximum: maximum)
            }
            systems[system] = ranges
        }
        return PaymentLimits(defaultCurrency: defaultCurrency, topUps: topUps, systems: systems)
    }

    private static func named(_ code: String, _ what: String) throws(BillingError) -> Currency {
        do {
            return try Currency(code: code)
        } catch {
            throw .invalidArgument("\(what): \(error)")
        }
    }

    private static func amount(_ text: String, _ currency: Currency, _ what: String) throws(BillingError) -> Money {
        do {
            return try Money(parsing: text, currency)
        } catch {
            throw .invalidArgument("\(what): \(error)")
        }
    }

    private static func policy(_ topUp: TopUp, _ currency: Currency, _ what: String) throws(BillingError) -> TopUpPolicy
    {
        let minimum = try amount(topUp.minimum, currency, "\(what).minimum")
        let maximum = try amount(topUp.maximum, currency, "\(what).maximum")
        guard minimum.amountMinorUnits > 0, minimum <= maximum else {
            throw .invalidArgument("\(what): need 0 < minimum <= maximum")
        }
        var presets: [Money] = []
        for text in topUp.presets.prefix(20) {
            let preset = try amount(text, currency, "\(what).presets")
            guard preset >= minimum, preset <= maximum else {
                throw .invalidArgument("\(what): preset \(text) is outside the limits")
            }
            presets.append(preset)
        }
        guard topUp.presets.count <= 20 else { throw .invalidArgument("\(what): at most 20 presets") }
        return TopUpPolicy(minimum: minimum, maximum: maximum, presets: presets)
    }

    /// A secret from `file` if given, else from the environment; trailing
    /// whitespace dropped. The value is never logged or put in an error.
    public static func secret(
        file: String,
        environment name: String,
        what: String,
        environment: [String: String]? = nil
    ) throws(ConfigurationError) -> String {
        let environment = environment ?? ProcessInfo.processInfo.environment
        // Keys and secrets are short printable tokens: anything else (a
        // space, a line break, a control character) would end up inside an
        // HTTP header, so it is refused, as is a file too large to be one.
        func checked(_ secret: String, from source: String) throws(ConfigurationError) -> String {
            guard secret.utf8.count <= 4096, secret.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
                throw ConfigurationError(
                    problems: ["the \(what) in \(source) is not one token of printable ASCII (at most 4 KiB)"]
                )
            }
            return secret
        }
        if !file.isEmpty {
            // A regular file, read no further than a secret can be long: a
            // FIFO, a device or a huge file is refused, not waited for.
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: file) else {
                throw ConfigurationError(problems: ["cannot read the \(what) file \(file)"])
            }
            guard attributes[.type] as? FileAttributeType == .typeRegular else {
                throw ConfigurationError(problems: ["the \(what) file \(file) is not a regular file"])
            }
            guard (attributes[.size] as? NSNumber)?.intValue ?? 0 <= 8192 else {
                throw ConfigurationError(problems: ["the \(what) file \(file) is over 8 KiB: not a secret"])
            }
            guard let handle = FileHandle(forReadingAtPath: file) else {
                throw ConfigurationError(problems: ["cannot read the \(what) file \(file)"])
            }
            defer { try? handle.close() }
            let data: Data
            do {
                data = try handle.read(upToCount: 8193) ?? Data()
            } catch {
                throw ConfigurationError(problems: ["cannot read the \(what) file \(file)"])
            }
            guard data.count <= 8192, let text = String(data: data, encoding: .utf8) else {
                throw ConfigurationError(problems: ["the \(what) file \(file) is over 8 KiB or not text"])
            }
            let secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !secret.isEmpty else { throw ConfigurationError(problems: ["the \(what) file \(file) is empty"]) }
            return try checked(secret, from: "file \(file)")
        }
        guard let secret = environment[name], !secret.isEmpty else {
            throw ConfigurationError(problems: ["\(what) missing: set \(name) or give a key file"])
        }
        return try checked(secret, from: "\(name)")
    }

    private static func isProviderURL(_ url: String) -> Bool {
        url.hasPrefix("https://") || url.hasPrefix("http://127.0.0.1")
    }

    /// The enabled payment systems' secrets that cannot be read (the
    /// secrets themselves are not kept). `validate()` checks the settings;
    /// this checks the machine, so billingd's `--check-config` runs both.
    public func secretProblems(environment: [String: String]? = nil) -> [String] {
        var wanted: [(file: String, variable: String, what: String)] = []
        if stripe.enabled { wanted.append((stripe.secretKeyFile, stripe.secretKeyEnvironment, "Stripe secret key")) }
        if paypal.enabled {
            wanted.append((paypal.clientSecretFile, paypal.clientSecretEnvironment, "PayPal client secret"))
        }
        if stripe.enabled && webhooks.enabled {
            wanted.append((stripe.webhookSecretFile, stripe.webhookSecretEnvironment, "Stripe webhook signing secret"))
        }
        var problems: [String] = []
        // The PostgreSQL password, if one is to be read (the URL is validate()'s).
        let postgres = storage.postgres
        let variables = environment ?? ProcessInfo.processInfo.environment
        if usesPostgres && (!postgres.passwordFile.isEmpty || variables[postgres.passwordEnvironment]?.isEmpty == false)
        {
            wanted.append((postgres.passwordFile, postgres.passwordEnvironment, "PostgreSQL password"))
        }
        for secret in wanted {
            do {
                _ = try Self.secret(
                    file: secret.file,
                    environment: secret.variable,
                    what: secret.what,
                    environment: environment
                )
            } catch {
                problems += error.problems
            }
        }
        return problems
    }

    /// Files holding secrets or the ledger that others on the machine could
    /// read (group or world permission bits): warnings, not errors, since
    /// billingd can still run; deploy/README.md asks for 0600.
    public func permissionWarnings() -> [String] {
        var files: [(path: String, what: String)] = []
        if stripe.enabled && !stripe.secretKeyFile.isEmpty {
            files.append((stripe.secretKeyFile, "the Stripe secret key file"))
        }
        if stripe.enabled && webhooks.enabled && !stripe.webhookSecretFile.isEmpty {
            files.append((stripe.webhookSecretFile, "the Stripe webhook secret file"))
        }
        if paypal.enabled && !paypal.clientSecretFile.isEmpty {
            files.append((paypal.clientSecretFile, "the PayPal client secret file"))
        }
        if !tls.privateKey.isEmpty { files.append((tls.privateKey, "the TLS private key")) }
        if usesPostgres && !storage.postgres.passwordFile.isEmpty {
            files.append((storage.postgres.passwordFile, "the PostgreSQL password file"))
        }
        if !usesPostgres {
            for suffix in ["", "-wal", "-shm"] { files.append((resolvedDatabasePath + suffix, "the database")) }
        }
        return files.compactMap { file in
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: file.path),
                let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue, mode & 0o077 != 0
            else { return nil }
            return "\(file.what) \(file.path) is readable by others (mode \(String(mode, radix: 8))): chmod 600 it"
        }
    }

    /// Whether the books are on PostgreSQL (`storage.postgres.url`).
    public var usesPostgres: Bool { !storage.postgres.url.isEmpty }

    private func storageProblems() -> [String] {
        guard usesPostgres else { return [] }
        let postgres = storage.postgres
        var problems: [String] = []
        do {
            _ = try PostgresConfiguration(url: postgres.url)
        } catch {
            problems.append(error.description)
        }
        if !["disable", "verify-full"].contains(postgres.tls.mode) {
            problems.append("storage.postgres.tls.mode must be \"disable\" or \"verify-full\"")
        }
        if !(1...256).contains(postgres.poolSize) { problems.append("storage.postgres.poolSize must be 1 to 256") }
        if !(0.1...3600).contains(postgres.statementTimeoutSeconds) {
            problems.append("storage.postgres.statementTimeoutSeconds must be 0.1 to 3600")
        }
        if !(1...120).contains(postgres.connectTimeoutSeconds) {
            problems.append("storage.postgres.connectTimeoutSeconds must be 1 to 120")
        }
        return problems
    }

    /// PostgreSQL's settings with the password read (nil: SQLite).
    ///
    /// - Throws: `ConfigurationError` when the password cannot be read or a
    ///   setting is wrong.
    public func postgresConfiguration(
        environment: [String: String]? = nil
    ) throws(ConfigurationError) -> PostgresConfiguration? {
        guard usesPostgres else { return nil }
        let postgres = storage.postgres
        let environment = environment ?? ProcessInfo.processInfo.environment
        var password: String?
        if !postgres.passwordFile.isEmpty || environment[postgres.passwordEnvironment]?.isEmpty == false {
            password = try Self.secret(
                file: postgres.passwordFile,
                environment: postgres.passwordEnvironment,
                what: "PostgreSQL password",
                environment: environment
            )
        }
        let tls: PostgresConfiguration.TLS =
            postgres.tls.mode == "verify-full"
            ? .verifyFull(caFile: postgres.tls.caFile.isEmpty ? nil : postgres.tls.caFile) : .disable
        do {
            var configuration = try PostgresConfiguration(url: postgres.url, password: password, tls: tls)
            configuration.poolSize = postgres.poolSize
            configuration.statementTimeout = .milliseconds(Int64(postgres.statementTimeoutSeconds * 1000))
            configuration.connectTimeout = .milliseconds(Int64(postgres.connectTimeoutSeconds * 1000))
            return configuration
        } catch {
            throw ConfigurationError(problems: [error.description])
        }
    }

    public var resolvedDatabasePath: String {
        databasePath.isEmpty ? dataDirectory + "/billing.sqlite" : databasePath
    }
}

public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public let problems: [String]

    public init(problems: [String]) {
        self.problems = problems
    }

    public var description: String {
        "invalid configuration:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}

extension BillingConfiguration {
    /// The file's fields over the defaults: every field is optional, and a
    /// key the defaults do not have (a typo) is a problem, not ignored.
    static func decodeOverDefaults(_ data: Data, path: String) throws(ConfigurationError) -> BillingConfiguration {
        let file: Any
        do {
            file = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw ConfigurationError(problems: ["\(path) is not valid JSON"])
        }
        guard let fileObject = file as? [String: Any] else {
            throw ConfigurationError(problems: ["\(path) must hold a JSON object"])
        }
        let defaults: Any
        do {
            defaults = try JSONSerialization.jsonObject(with: JSONEncoder().encode(BillingConfiguration()))
        } catch {
            preconditionFailure("the defaults always encode")
        }
        var unknown: [String] = []
        let merged = merge(fileObject, over: defaults as? [String: Any] ?? [:], path: "", unknown: &unknown)
        guard unknown.isEmpty else {
            throw ConfigurationError(problems: unknown.map { "\(path): unknown setting \($0)" })
        }
        do {
            return try JSONDecoder().decode(
                BillingConfiguration.self,
                from: JSONSerialization.data(withJSONObject: merged)
            )
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.dataCorrupted(context) {
            throw ConfigurationError(problems: [
                "\(path): \(context.codingPath.map(\.stringValue).joined(separator: ".")) has the wrong type"
            ])
        } catch {
            throw ConfigurationError(problems: ["\(path): \(error)"])
        }
    }

    /// Settings that are maps (keyed by currency code), and the defaults each
    /// entry's fields merge over: an entry may leave fields out, and a field
    /// no entry has (a typo) is a problem as anywhere else.
    private static var mapEntryDefaults: [String: Any] {
        func encoded(_ value: some Encodable) -> Any {
            (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(value))) ?? [:]
        }
        return ["currencies": encoded(TopUp()), "limits": encoded(AmountLimits())]
    }

    private static func merge(
        _ file: [String: Any],
        over defaults: [String: Any],
        path: String,
        unknown: inout [String]
    ) -> [String: Any] {
        var result = defaults
        for (key, value) in file {
            let name = path.isEmpty ? key : path + "." + key
            guard let base = defaults[key] else {
                unknown.append(name)
                continue
            }
            if let entries = value as? [String: Any], let entryDefaults = mapEntryDefaults[key] as? [String: Any],
                (base as? [String: Any])?.isEmpty == true
            {
                var merged: [String: Any] = [:]
                for (entryKey, entry) in entries {
                    guard let fields = entry as? [String: Any] else {
                        merged[entryKey] = entry  // the decoder names the wrong type
                        continue
                    }
                    merged[entryKey] = merge(
                        fields,
                        over: entryDefaults,
                        path: name + "." + entryKey,
                        unknown: &unknown
                    )
                }
                result[key] = merged
            } else if let nested = value as? [String: Any], let baseNested = base as? [String: Any] {
                result[key] = merge(nested, over: baseNested, path: name, unknown: &unknown)
            } else {
                result[key] = value
            }
        }
        return result
    }
}
