internal import BillingAPI
public import BillingCore
internal import BillingPostgres
public import BillingProviders
internal import BillingRPC
public import BillingStorage
internal import BillingTLS
public import BillingTransport
internal import Foundation
internal import Hummingbird
public import Logging
internal import NIOCore
internal import NIOPosix
internal import ServiceLifecycle
public import UnixSignals

/// A running billingd: storage, payment systems, the RPC server, the webhook
/// endpoint, the sandbox's page, the poller and the event hub, each a part
/// (`Service`) of one `ServiceGroup` that starts them together and stops
/// them in order. billingd's `main` and the end-to-end tests both use it.
///
/// Shutdown (SIGTERM or SIGINT when billingd runs it, or `shutdown()`):
/// health says NOT_SERVING, every watch ends at once with where to resume,
/// the webhook endpoint stops, the RPC server stops taking calls and lets
/// running ones finish within the grace period, the poller stops, the
/// sandbox's page stops. A part that fails stops the others the same way.
public final class BillingApplication: Sendable {
    public let configuration: BillingConfiguration
    /// The books: SQLite (the embedded default) or PostgreSQL (`storage.postgres`).
    public let store: any SQLStore
    public let health: HealthService
    /// The sandbox payment system (nil when disabled).
    public let sandbox: SandboxProvider?
    /// The RPC port actually bound (for port 0).
    public let port: Int
    /// The webhook endpoint's port (nil when disabled).
    public let webhookPort: Int?
    /// The metrics endpoint's port (nil when disabled).
    public let metricsPort: Int?
    /// The event hub: ending it ends every watch (at shutdown).
    let hub: EventHub
    private let reloader: Reloader
    private let group: ServiceGroup
    private let running: Task<Void, any Error>
    private let logger: Logger

    /// The directory of the TLS files in use (the development set lives in `<data>/tls`).
    public var tlsDirectory: String { configuration.dataDirectory + "/tls" }

    private init(
        configuration: BillingConfiguration,
        store: any SQLStore,
        health: HealthService,
        sandbox: SandboxProvider?,
        port: Int,
        webhookPort: Int?,
        metricsPort: Int?,
        hub: EventHub,
        reloader: Reloader,
        group: ServiceGroup,
        running: Task<Void, any Error>,
        logger: Logger
    ) {
        self.configuration = configuration
        self.store = store
        self.health = health
        self.sandbox = sandbox
        self.port = port
        self.webhookPort = webhookPort
        self.metricsPort = metricsPort
        self.hub = hub
        self.reloader = reloader
        self.group = group
        self.running = running
        self.logger = logger
    }

    /// Starts everything and returns once every server listens, or throws
    /// with nothing left running.
    ///
    /// - Parameters:
    ///   - clock: the time everything reads; tests and benchmarks may pass their own.
    ///   - signals: the signals that shut it down gracefully (billingd: SIGTERM, SIGINT).
    /// - Throws: `ConfigurationError` for a bad configuration; `TLSError`,
    ///   `BillingError` or a NIO error if a file or port cannot be used.
    public static func start(
        _ configuration: BillingConfiguration,
        logger: Logger,
        clock: any BillingClock = SystemClock(),
        signals: [UnixSignal] = [],
        reloadSignal: UnixSignal? = nil
    ) async throws -> BillingApplication {
        let problems = configuration.validate()
        guard problems.isEmpty else { throw ConfigurationError(problems: problems) }
        let limits = try configuration.paymentLimits()

        try FileManager.default.createDirectory(
            atPath: configuration.dataDirectory,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        let tls = try serverTLS(configuration, logger: logger)
        let metrics = configuration.metrics.enabled ? BillingMetrics() : nil
        let storage = StorageConfiguration(
            path: configuration.resolvedDatabasePath,
            idempotencyKeyLifetime: .seconds(configuration.idempotencyKeyLifetimeSeconds),
            limits: limits,
            invoices: configuration.invoices.terms
        )
        let store: any SQLStore
        if let postgres = try configuration.postgresConfiguration() {
            store = try await PostgresStore.open(
                storage,
                postgres: postgres,
                clock: clock,
                observer: metrics?.storeObserver,
                logger: logger
            )
        } else {
            store = try SQLiteStore(storage, clock: clock, observer: metrics?.storeObserver)
        }
        // PostgreSQL's connections and threads end with billingd (SQLite's file closes with its last reference).
        let closeStore: @Sendable () async -> Void = { await (store as? PostgresStore)?.close() }
        let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        var server: TTRPCServer?
        var stopGroup: (@Sendable () async -> Void)?
        // Opened once billingd has started whole; the poller waits for it.
        let started = Eventually<Void>()
        do {
            var providers: [PaymentSystem: any PaymentProvider] = [:]
            var sandbox: SandboxProvider?
            var sandboxPages: HTTPPart?
            if configuration.sandbox.enabled {
                var behaviour = SandboxProvider.Behaviour()
                behaviour.latency = .milliseconds(configuration.sandbox.latencyMilliseconds)
                behaviour.unavailable = configuration.sandbox.unavailable
                behaviour.declineSavedMethodCharges = configuration.sandbox.declineSavedMethodCharges
                let provider = try SandboxProvider(
                    databasePath: configuration.dataDirectory + "/sandbox.sqlite",
                    legacyStateFile: configuration.dataDirectory + "/sandbox-state.json",
                    paymentTimeToLive: .seconds(configuration.sandbox.paymentTimeToLiveSeconds),
                    behaviour: behaviour
                )
                // A person clicks twice at most: a connection idle for 30 s is closed.
                sandboxPages = HTTPPart(
                    router: SandboxPages.router(provider),
                    host: configuration.sandbox.host,
                    port: configuration.sandbox.port,
                    name: "billingd sandbox",
                    idleTimeout: .seconds(30),
                    logger: logger
                )
                sandbox = provider
                providers[.sandbox] = provider
            }
            var paypalProvider: PayPalProvider?
            var stripeProvider: StripeProvider?
            var stripeWebhook: StripeWebhook?
            if configuration.stripe.enabled {
                var stripe = StripeProvider.Configuration(
                    secretKey: try BillingConfiguration.secret(
                        file: configuration.stripe.secretKeyFile,
                        environment: configuration.stripe.secretKeyEnvironment,
                        what: "Stripe secret key"
                    )
                )
                stripe.baseURL = configuration.stripe.baseURL
                stripe.timeout = .seconds(configuration.stripe.timeoutSeconds)
                stripe.paymentTimeToLive = .seconds(configuration.stripe.paymentTimeToLiveSeconds)
                stripe.paymentMethodTypes = configuration.stripe.paymentMethodTypes
                stripeProvider = StripeProvider(stripe)
                providers[.stripe] = stripeProvider
                logger.info("Stripe enabled", metadata: ["base_url": "\(configuration.stripe.baseURL)"])
            }
            if configuration.paypal.enabled {
                var paypal = PayPalProvider.Configuration(
                    clientID: configuration.paypal.clientID,
                    clientSecret: try BillingConfiguration.secret(
                        file: configuration.paypal.clientSecretFile,
                        environment: configuration.paypal.clientSecretEnvironment,
                        what: "PayPal client secret"
                    )
                )
                paypal.baseURL = configuration.paypal.baseURL
                paypal.timeout = .seconds(configuration.paypal.timeoutSeconds)
                paypal.paymentTimeToLive = .seconds(configuration.paypal.paymentTimeToLiveSeconds)
                paypal.brandName = configuration.paypal.brandName
                paypalProvider = PayPalProvider(paypal)
                providers[.paypal] = paypalProvider
                logger.info("PayPal enabled", metadata: ["base_url": "\(configuration.paypal.baseURL)"])
            }

            let registry = ProviderRegistry(
                providers: metrics.map { metrics in
                    providers.mapValues { MeasuredProvider(base: $0, metrics: metrics) }
                } ?? providers
            )
            let flows = PaymentFlows(
                store: store,
                providers: registry,
                clock: clock,
                settings: PaymentFlows.Settings(
                    unstartedGrace: .seconds(configuration.poller.unstartedPaymentGraceSeconds),
                    unstartedChargeGrace: .seconds(configuration.poller.unstartedChargeGraceSeconds),
                    heldNotice: .seconds(configuration.poller.heldNoticeSeconds)
                ),
                logger: logger
            )
            let hub = EventHub(store: store, clock: clock, metrics: metrics)
            let env = ServiceEnvironment(
                store: store,
                flows: flows,
                limits: limits,
                streams: EventStreams(
                    store: store,
                    hub: hub,
                    maxLag: configuration.limits.maxSubscriberLagEvents,
                    metrics: metrics
                ),
                reconciler: Reconciler(store: store, providers: registry),
                clock: clock,
                logger: logger
            )
            let health = HealthService(services: [
                "billing.v1.Accounts", "billing.v1.Balance", "billing.v1.PaymentMethods",
                "billing.v1.Renewal", "billing.v1.MigrationPayment", "billing.v1.Operations",
            ])
            let services: [any RPCService] = [
                health, AccountsService(env: env), BalanceService(env: env), PaymentMethodsService(env: env),
                RenewalService(env: env), MigrationPaymentService(env: env), OperationsService(env: env),
            ]
            var webhooks: HTTPPart?
            if configuration.webhooks.enabled {
                var routes: [String: WebhookRoutes.Route] = [:]
                if configuration.stripe.enabled {
                    let stripe = StripeWebhook(
                        secret: try BillingConfiguration.secret(
                            file: configuration.stripe.webhookSecretFile,
                            environment: configuration.stripe.webhookSecretEnvironment,
                            what: "Stripe webhook signing secret"
                        )
                    )
                    stripeWebhook = stripe
                    routes["/webhooks/stripe"] = stripe.route(
                        flows: flows,
                        provider: providers[.stripe] as? StripeProvider,
                        clock: clock,
                        logger: logger
                    )
                }
                if let paypalProvider {
                    routes["/webhooks/paypal"] = PayPalWebhook(
                        provider: paypalProvider,
                        webhookID: configuration.paypal.webhookID
                    )
                    .route(flows: flows, logger: logger)
                }
                // A sender that stops sending is dropped after 10 s, not waited for.
                webhooks = HTTPPart(
                    router: WebhookRoutes.router(routes, maxBodyBytes: configuration.webhooks.maxBodyBytes),
                    host: configuration.webhooks.host,
                    port: configuration.webhooks.port,
                    name: "billingd webhooks",
                    idleTimeout: .seconds(10),
                    logger: logger
                )
            }
            let rpc = try await TTRPCServer.start(
                host: configuration.listen.host,
                port: configuration.listen.port,
                tls: tls,
                services: services,
                limits: serverLimits(configuration),
                classify: Authorization.connectionClass,
                observer: metrics,
                group: eventLoops
            )
            server = rpc
            let metricsPart = metrics.map { metrics in
                // A scraper that stops reading is dropped after 10 s.
                HTTPPart(
                    router: MetricsRoutes.router(metrics, server: rpc, hub: hub, store: store, clock: clock),
                    host: configuration.metrics.host,
                    port: configuration.metrics.port,
                    name: "billingd metrics",
                    idleTimeout: .seconds(10),
                    logger: logger
                )
            }
            let poller = Poller(
                store: store,
                flows: flows,
                clock: clock,
                settings: Poller.Settings(
                    interval: .seconds(configuration.poller.intervalSeconds),
                    concurrency: configuration.poller.concurrency,
                    lease: .seconds(configuration.poller.leaseSeconds),
                    maxBackoff: .seconds(configuration.poller.maxBackoffSeconds),
                    pendingMethodTimeout: .seconds(configuration.poller.pendingMethodTimeoutSeconds),
                    autoRenewalRetry: .seconds(configuration.poller.autoRenewalRetrySeconds),
                    checksPerSecond: [
                        .sandbox: configuration.sandbox.pollerChecksPerSecond,
                        .stripe: configuration.stripe.pollerChecksPerSecond,
                        .paypal: configuration.paypal.pollerChecksPerSecond,
                    ].filter { $0.value > 0 }
                ),
                logger: logger,
                metrics: metrics
            )

            let reloader = Reloader(
                configuration: configuration,
                server: rpc,
                stripe: stripeProvider,
                stripeWebhook: stripeWebhook,
                paypal: paypalProvider,
                logger: logger
            )
            // Started in this order, stopped in the reverse one.
            var parts: [any Service] = []
            if let sandboxPages { parts.append(sandboxPages.application) }
            parts.append(PollerPart(poller: poller, started: started))
            parts.append(RPCServerPart(server: rpc, grace: .seconds(configuration.limits.shutdownGraceSeconds)))
            if let webhooks { parts.append(webhooks.application) }
            if let metricsPart { parts.append(metricsPart.application) }
            if let reloadSignal {
                // Trapped before the start returns: a SIGHUP from then on reloads, never kills.
                let hangups = await UnixSignalsSequence(trapping: reloadSignal)
                parts.append(ReloadOnSignal(signals: hangups) { await reloader.reload() })
            }
            parts.append(EventHubPart(hub: hub))
            parts.append(HealthAnnouncement(health: health, logger: logger))
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: parts.map {
                        ServiceGroupConfiguration.ServiceConfiguration(
                            service: $0,
                            successTerminationBehavior: .gracefullyShutdownGroup,
                            failureTerminationBehavior: .gracefullyShutdownGroup
                        )
                    },
                    gracefulShutdownSignals: signals,
                    logger: logger
                )
            )
            let servers = [sandboxPages, webhooks, metricsPart].compactMap(\.self)
            // The group owns every part from here; when it ends, the event loops go too.
            let running = Task {
                do {
                    try await group.run()
                    for part in servers { part.listening.fail(CancellationError()) }
                    started.fail(CancellationError())
                } catch {
                    for part in servers { part.listening.fail(error) }
                    started.fail(error)
                    try? await eventLoops.shutdownGracefully()
                    await closeStore()
                    throw error
                }
                try? await eventLoops.shutdownGracefully()
                await closeStore()
            }
            stopGroup = {
                await group.triggerGracefulShutdown()
                _ = await running.result
            }
            if let sandboxPages, let sandbox {
                let port = try await sandboxPages.listening.value()
                let host = configuration.sandbox.host
                let url = "http://\(host.contains(":") ? "[\(host)]" : host):\(port)"
                sandbox.setBaseURL(url)
                logger.info("sandbox payment page listening", metadata: ["url": "\(url)"])
            }
            let webhookPort = try await webhooks?.listening.value()
            if let webhookPort {
                logger.info(
                    "webhooks listening",
                    metadata: ["address": "\(configuration.webhooks.host):\(webhookPort)"]
                )
            }
            let metricsPort = try await metricsPart?.listening.value()
            if let metricsPort {
                logger.info(
                    "metrics listening",
                    metadata: ["address": "\(configuration.metrics.host):\(metricsPort)", "path": "/metrics"]
                )
            }
            let port = rpc.localAddress?.port ?? configuration.listen.port
            logger.info(
                "billingd listening",
                metadata: [
                    "address": "\(configuration.listen.host):\(port)",
                    "database":
                        "\(configuration.usesPostgres ? configuration.storage.postgres.url : configuration.resolvedDatabasePath)",
                ]
            )
            started.succeed(())
            return BillingApplication(
                configuration: configuration,
                store: store,
                health: health,
                sandbox: sandbox,
                port: port,
                webhookPort: webhookPort,
                metricsPort: metricsPort,
                hub: hub,
                reloader: reloader,
                group: group,
                running: running,
                logger: logger
            )
        } catch {
            started.fail(error)
            if let stopGroup {
                await stopGroup()
            } else {
                await server?.shutdown(grace: .zero)
                try? await eventLoops.shutdownGracefully()
                await closeStore()
            }
            throw error
        }
    }

    /// Runs until the group ends: a shutdown signal, `shutdown()`, or a
    /// part that failed (thrown here).
    public func run() async throws {
        try await running.value
        logger.info("billingd stopped")
    }

    /// Stops everything in order (see the type's comment) and returns once stopped.
    public func shutdown() async {
        await group.triggerGracefulShutdown()
        _ = await running.result
        logger.info("billingd stopped")
    }

    /// `billingd --backup-to FILE`: a consistent, checked copy of the
    /// configured database (`SQLiteStore.backup`), taken while a billingd
    /// may be serving it. The database must exist.
    public static func backup(
        _ configuration: BillingConfiguration,
        to destination: String
    ) async throws -> (accounts: Int, latestSequence: UInt64) {
        guard !configuration.usesPostgres else {
            throw BillingError.failedPrecondition(
                "--backup-to copies the SQLite file; back up PostgreSQL with its own tools (pg_dump, base backups)"
            )
        }
        let path = configuration.resolvedDatabasePath
        guard FileManager.default.fileExists(atPath: path) else {
            throw BillingError.notFound("no database at \(path)")
        }
        return try await SQLiteStore.backup(databaseAt: path, to: destination)
    }

    /// `billingd --check-config` on PostgreSQL: connects once and says what
    /// is there (nothing changed); nil on SQLite.
    public static func probeStorage(_ configuration: BillingConfiguration) async throws -> String? {
        guard let postgres = try configuration.postgresConfiguration() else { return nil }
        do {
            return "\(postgres): " + (try await PostgresStore.probe(postgres))
        } catch {
            let hint =
                postgres.password == nil && "\(error)".contains("Password")
                ? " (the server wants a password: set storage.postgres.passwordFile or \(configuration.storage.postgres.passwordEnvironment))"
                : ""
            throw BillingError.storage("\(postgres): \(error)\(hint)", retryable: false)
        }
    }

    /// `billingd --migrate-storage-from FILE`: the SQLite file at `source`
    /// (read only: a checked copy of it, brought to this version's schema) copied
    /// into the configured PostgreSQL database, which must be empty, then
    /// checked (`StorageMigration`). Stop every billingd first.
    public static func migrateStorage(
        _ configuration: BillingConfiguration,
        from source: String,
        logger: Logger
    ) async throws -> String {
        guard let postgres = try configuration.postgresConfiguration() else {
            throw BillingError.failedPrecondition(
                "set storage.postgres.url in the configuration: the copy goes into that database"
            )
        }
        guard FileManager.default.fileExists(atPath: source) else {
            throw BillingError.notFound("no SQLite database at \(source)")
        }
        // The source is only read (it is the operator's way back): checked, then
        // copied with SQLite's online backup into a temporary folder, where the
        // copy is brought to this version's schema and read.
        try SQLiteStore.requireBillingDatabase(at: source)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "billingd-migrate-\(UUID().uuidString)"
        ).path
        try FileManager.default.createDirectory(
            atPath: folder,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        defer { try? FileManager.default.removeItem(atPath: folder) }
        _ = try await SQLiteStore.backup(databaseAt: source, to: folder + "/source.sqlite")
        let storage = StorageConfiguration(path: folder + "/source.sqlite")
        let sqlite = try SQLiteStore(storage)
        let target = try await PostgresStore.open(storage, postgres: postgres, logger: logger)
        do {
            let report = try await StorageMigration.copy(from: sqlite, to: target)
            await target.close()
            try sqlite.close()
            return report.description
        } catch {
            await target.close()
            try? sqlite.close()
            throw error
        }
    }

    /// What SIGHUP does: the TLS files and the payment systems' secrets read
    /// again (`Reloader`). True when everything reloaded; what failed keeps
    /// its current value and is logged.
    @discardableResult
    public func reload() async -> Bool {
        await reloader.reload()
    }

    /// Reads the TLS certificate, key and client CA again (the files the
    /// configuration names, or the development set, made again if removed)
    /// for new connections; connections open now keep theirs. A reload that
    /// fails keeps the current ones and says why.
    @discardableResult
    static func reloadTLS(_ configuration: BillingConfiguration, server: TTRPCServer, logger: Logger) -> Bool {
        do {
            server.replaceTLS(try serverTLS(configuration, logger: logger))
            logger.notice("TLS certificates reloaded")
            return true
        } catch {
            logger.error("TLS reload failed; the current certificates stay in use", metadata: ["error": "\(error)"])
            return false
        }
    }

    private static func serverTLS(_ configuration: BillingConfiguration, logger: Logger) throws -> TLSContext {
        var certificate = configuration.tls.certificate
        var key = configuration.tls.privateKey
        var ca = configuration.tls.clientCA
        if certificate.isEmpty {
            let directory = configuration.dataDirectory + "/tls"
            try FileManager.default.createDirectory(
                atPath: directory,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
            if try DevelopmentCertificates.ensure(in: directory) {
                logger.notice("created development certificates", metadata: ["directory": "\(directory)"])
            }
            certificate = directory + "/server.pem"
            key = directory + "/server-key.pem"
            ca = directory + "/ca.pem"
        }
        var tls = TLSConfiguration(
            role: .server,
            certificateChainPath: certificate,
            privateKeyPath: key,
            trustRootsPath: ca
        )
        tls.handshakeTimeout = .seconds(configuration.tls.handshakeTimeoutSeconds)
        return try TLSContext(tls)
    }

    private static func serverLimits(_ configuration: BillingConfiguration) -> ServerLimits {
        var limits = ServerLimits()
        limits.maxFrameBytes = configuration.limits.maxFrameBytes
        limits.maxMetadataBytes = configuration.limits.maxMetadataBytes
        limits.maxConcurrentStreams = configuration.limits.maxConcurrentStreams
        limits.maxConnections = configuration.limits.maxConnections
        limits.reservedPrivilegedConnections = configuration.limits.reservedPrivilegedConnections
        limits.maxConnectionsPerPeer = configuration.limits.maxConnectionsPerPeer
        limits.maxUnauthenticatedConnections = configuration.limits.maxUnauthenticatedConnections
        limits.idleTimeout = .seconds(configuration.limits.idleTimeoutSeconds)
        limits.streamWriteTimeout = .seconds(configuration.limits.streamWriteTimeoutSeconds)
        return limits
    }
}

/// What a reload (SIGHUP) reads again: the TLS certificate, key and client
/// CA (for new connections), and the payment systems' secrets from their
/// files (Stripe's secret key and webhook signing secret, PayPal's client
/// secret; an environment variable cannot change under a running process).
/// Each part that fails keeps its current value and is logged; no secret's
/// value is ever logged.
struct Reloader: Sendable {
    let configuration: BillingConfiguration
    let server: TTRPCServer
    let stripe: StripeProvider?
    let stripeWebhook: StripeWebhook?
    let paypal: PayPalProvider?
    let logger: Logger

    @discardableResult
    func reload() async -> Bool {
        var succeeded = BillingApplication.reloadTLS(configuration, server: server, logger: logger)
        var changed: [String] = []
        func read(_ file: String, _ environment: String, _ what: String) -> String? {
            do {
                return try BillingConfiguration.secret(file: file, environment: environment, what: what)
            } catch {
                logger.error("\(what) reload failed; the current one stays in use", metadata: ["error": "\(error)"])
                succeeded = false
                return nil
            }
        }
        if let stripe,
            let key = read(
                configuration.stripe.secretKeyFile,
                configuration.stripe.secretKeyEnvironment,
                "Stripe secret key"
            ),
            stripe.secretKey.replace(with: key)
        {
            changed.append("Stripe secret key")
        }
        if let stripeWebhook,
            let secret = read(
                configuration.stripe.webhookSecretFile,
                configuration.stripe.webhookSecretEnvironment,
                "Stripe webhook signing secret"
            ),
            stripeWebhook.secret.replace(with: secret)
        {
            changed.append("Stripe webhook signing secret")
        }
        if let paypal,
            let secret = read(
                configuration.paypal.clientSecretFile,
                configuration.paypal.clientSecretEnvironment,
                "PayPal client secret"
            )
        {
            if await paypal.replaceClientSecret(secret) { changed.append("PayPal client secret") }
        }
        if !changed.isEmpty {
            logger.notice(
                "payment-system secrets reloaded",
                metadata: ["changed": "\(changed.joined(separator: ", "))"]
            )
        }
        return succeeded
    }
}
