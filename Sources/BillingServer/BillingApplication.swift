public import BillingCore
internal import BillingAPI
public import BillingProviders
internal import BillingRPC
public import BillingStorage
internal import BillingTLS
public import BillingTransport
internal import Foundation
public import Logging
internal import NIOCore
internal import NIOPosix

/// A running billingd: storage, payment systems, the RPC server, the sandbox
/// page and the poller, started together and stopped together.
/// billingd's `main` and the end-to-end tests both use it.
public final class BillingApplication: Sendable {
    public let configuration: BillingConfiguration
    public let store: SQLiteStore
    public let server: TTRPCServer
    public let health: HealthService
    /// The sandbox payment system (nil when disabled), and its page server.
    public let sandbox: SandboxProvider?
    public let sandboxPages: SandboxPageServer?
    /// The webhook endpoint (nil when disabled).
    public let webhooks: WebhookServer?
    private let pollerTask: Task<Void, Never>
    /// The event hub, and its reader: ending that ends every watch (at shutdown).
    let hub: EventHub
    private let hubTask: Task<Void, Never>
    private let group: MultiThreadedEventLoopGroup
    private let logger: Logger

    /// The RPC port actually bound (for port 0).
    public var port: Int { server.localAddress?.port ?? configuration.listen.port }

    /// The directory of the TLS files in use (the development set lives in `<data>/tls`).
    public var tlsDirectory: String { configuration.dataDirectory + "/tls" }

    private init(configuration: BillingConfiguration, store: SQLiteStore, server: TTRPCServer, health: HealthService, sandbox: SandboxProvider?,
                 sandboxPages: SandboxPageServer?, webhooks: WebhookServer?, pollerTask: Task<Void, Never>, hub: EventHub,
                 hubTask: Task<Void, Never>, group: MultiThreadedEventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.store = store
        self.server = server
        self.health = health
        self.sandbox = sandbox
        self.sandboxPages = sandboxPages
        self.webhooks = webhooks
        self.pollerTask = pollerTask
        self.hub = hub
        self.hubTask = hubTask
        self.group = group
        self.logger = logger
    }

    /// Starts everything, or throws with nothing left running.
    ///
    /// - Throws: `ConfigurationError` for a bad configuration; `TLSError`,
    ///   `BillingError` or a NIO error if a file or port cannot be used.
    ///
    /// - Parameter clock: the time everything reads; tests and benchmarks may pass their own.
    public static func start(_ configuration: BillingConfiguration, logger: Logger, clock: any BillingClock = SystemClock()) async throws -> BillingApplication {
        let problems = configuration.validate()
        guard problems.isEmpty else { throw ConfigurationError(problems: problems) }
        let limits = try configuration.paymentLimits()

        try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let tls = try serverTLS(configuration, logger: logger)
        let store = try SQLiteStore(StorageConfiguration(path: configuration.resolvedDatabasePath,
                                                         idempotencyKeyLifetime: .seconds(configuration.idempotencyKeyLifetimeSeconds),
                                                         limits: limits), clock: clock)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)

        var providers: [PaymentSystem: any PaymentProvider] = [:]
        var sandbox: SandboxProvider?
        var sandboxPages: SandboxPageServer?
        var webhooks: WebhookServer?
        var paypalProvider: PayPalProvider?
        do {
            if configuration.sandbox.enabled {
                var behaviour = SandboxProvider.Behaviour()
                behaviour.latency = .milliseconds(configuration.sandbox.latencyMilliseconds)
                behaviour.unavailable = configuration.sandbox.unavailable
                behaviour.declineSavedMethodCharges = configuration.sandbox.declineSavedMethodCharges
                let provider = try SandboxProvider(databasePath: configuration.dataDirectory + "/sandbox.sqlite",
                                                   legacyStateFile: configuration.dataDirectory + "/sandbox-state.json",
                                               paymentTimeToLive: .seconds(configuration.sandbox.paymentTimeToLiveSeconds),
                                               behaviour: behaviour)
                sandboxPages = try await SandboxPageServer.start(host: configuration.sandbox.host, port: configuration.sandbox.port,
                                                                 provider: provider, group: group)
                sandbox = provider
                providers[.sandbox] = provider
                logger.info("sandbox payment page listening", metadata: ["url": "\(sandboxPages!.baseURL)"])
            }

            if configuration.stripe.enabled {
                var stripe = StripeProvider.Configuration(secretKey: try BillingConfiguration.secret(
                    file: configuration.stripe.secretKeyFile, environment: configuration.stripe.secretKeyEnvironment, what: "Stripe secret key"))
                stripe.baseURL = configuration.stripe.baseURL
                stripe.timeout = .seconds(configuration.stripe.timeoutSeconds)
                stripe.paymentTimeToLive = .seconds(configuration.stripe.paymentTimeToLiveSeconds)
                stripe.paymentMethodTypes = configuration.stripe.paymentMethodTypes
                providers[.stripe] = StripeProvider(stripe)
                logger.info("Stripe enabled", metadata: ["base_url": "\(configuration.stripe.baseURL)"])
            }
            if configuration.paypal.enabled {
                var paypal = PayPalProvider.Configuration(clientID: configuration.paypal.clientID, clientSecret: try BillingConfiguration.secret(
                    file: configuration.paypal.clientSecretFile, environment: configuration.paypal.clientSecretEnvironment, what: "PayPal client secret"))
                paypal.baseURL = configuration.paypal.baseURL
                paypal.timeout = .seconds(configuration.paypal.timeoutSeconds)
                paypal.paymentTimeToLive = .seconds(configuration.paypal.paymentTimeToLiveSeconds)
                paypal.brandName = configuration.paypal.brandName
                paypalProvider = PayPalProvider(paypal)
                providers[.paypal] = paypalProvider
                logger.info("PayPal enabled", metadata: ["base_url": "\(configuration.paypal.baseURL)"])
            }

            let registry = ProviderRegistry(providers: providers)
            let flows = PaymentFlows(store: store, providers: registry, clock: clock, settings: PaymentFlows.Settings(
                unstartedGrace: .seconds(configuration.poller.unstartedPaymentGraceSeconds),
                unstartedChargeGrace: .seconds(configuration.poller.unstartedChargeGraceSeconds),
                heldNotice: .seconds(configuration.poller.heldNoticeSeconds)), logger: logger)
            let hub = EventHub(store: store)
            let env = ServiceEnvironment(store: store, flows: flows, limits: limits,
                                         streams: EventStreams(store: store, hub: hub, maxLag: configuration.limits.maxSubscriberLagEvents),
                                         logger: logger)
            let health = HealthService(services: ["billing.v1.Accounts", "billing.v1.Balance", "billing.v1.PaymentMethods",
                                                  "billing.v1.Renewal", "billing.v1.MigrationPayment", "billing.v1.Operations"])
            let services: [any RPCService] = [
                health, AccountsService(env: env), BalanceService(env: env), PaymentMethodsService(env: env),
                RenewalService(env: env), MigrationPaymentService(env: env), OperationsService(env: env),
            ]
            if configuration.webhooks.enabled {
                var routes: [String: WebhookServer.Route] = [:]
                if configuration.stripe.enabled {
                    let stripe = StripeWebhook(secret: try BillingConfiguration.secret(
                        file: configuration.stripe.webhookSecretFile, environment: configuration.stripe.webhookSecretEnvironment,
                        what: "Stripe webhook signing secret"))
                    routes["/webhooks/stripe"] = stripe.route(flows: flows, provider: providers[.stripe] as? StripeProvider, clock: clock, logger: logger)
                }
                if let paypalProvider {
                    routes["/webhooks/paypal"] = PayPalWebhook(provider: paypalProvider, webhookID: configuration.paypal.webhookID)
                        .route(flows: flows, logger: logger)
                }
                webhooks = try await WebhookServer.start(host: configuration.webhooks.host, port: configuration.webhooks.port, routes: routes,
                                                         maxBodyBytes: configuration.webhooks.maxBodyBytes, group: group)
                logger.info("webhooks listening", metadata: ["address": "\(configuration.webhooks.host):\(webhooks?.port ?? 0)"])
            }
            let server = try await TTRPCServer.start(host: configuration.listen.host, port: configuration.listen.port, tls: tls,
                                                     services: services, limits: serverLimits(configuration),
                                                     classify: Authorization.connectionClass, group: group)
            let poller = Poller(store: store, flows: flows, clock: clock, settings: Poller.Settings(
                interval: .seconds(configuration.poller.intervalSeconds),
                concurrency: configuration.poller.concurrency,
                lease: .seconds(configuration.poller.leaseSeconds),
                maxBackoff: .seconds(configuration.poller.maxBackoffSeconds),
                pendingMethodTimeout: .seconds(configuration.poller.pendingMethodTimeoutSeconds)), logger: logger)
            let pollerTask = Task { await poller.run() }
            let hubTask = Task { await hub.run() }
            logger.info("billingd listening", metadata: ["address": "\(configuration.listen.host):\(server.localAddress?.port ?? 0)",
                                                         "database": "\(configuration.resolvedDatabasePath)"])
            return BillingApplication(configuration: configuration, store: store, server: server, health: health, sandbox: sandbox,
                                      sandboxPages: sandboxPages, webhooks: webhooks, pollerTask: pollerTask, hub: hub, hubTask: hubTask, group: group,
                                      logger: logger)
        } catch {
            await webhooks?.stop()
            await sandboxPages?.stop()
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Stops taking calls (health NOT_SERVING first, for load balancers), ends
    /// every watch at once (UNAVAILABLE with the sequence to resume after: a
    /// watch never finishes by itself, so waiting for it only delays the
    /// stop), lets running calls finish within the grace period, stops the
    /// poller.
    public func shutdown() async {
        logger.info("billingd shutting down")
        health.setAllNotServing()
        hubTask.cancel()
        await hubTask.value
        await webhooks?.stop()
        await server.shutdown(grace: .seconds(configuration.limits.shutdownGraceSeconds))
        pollerTask.cancel()
        await pollerTask.value
        await sandboxPages?.stop()
        try? await group.shutdownGracefully()
        logger.info("billingd stopped")
    }

    private static func serverTLS(_ configuration: BillingConfiguration, logger: Logger) throws -> TLSContext {
        var certificate = configuration.tls.certificate
        var key = configuration.tls.privateKey
        var ca = configuration.tls.clientCA
        if certificate.isEmpty {
            let directory = configuration.dataDirectory + "/tls"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            if try DevelopmentCertificates.ensure(in: directory) {
                logger.notice("created development certificates", metadata: ["directory": "\(directory)"])
            }
            certificate = directory + "/server.pem"
            key = directory + "/server-key.pem"
            ca = directory + "/ca.pem"
        }
        var tls = TLSConfiguration(role: .server, certificateChainPath: certificate, privateKeyPath: key, trustRootsPath: ca)
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
