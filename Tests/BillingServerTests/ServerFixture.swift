import BillingAPI
import BillingCore
import BillingMessages
import BillingProviders
import BillingRPC
import BillingServer
import BillingTLS
import BillingTransport
import Foundation
import Logging
import NIOCore
import NIOPosix

/// A whole billingd on loopback: its own data directory, RPC port 0, sandbox
/// page port 0, a fast poller; clients with certificates for each role.
final class ServerFixture: Sendable {
    let directory: String
    let application: BillingApplication
    let clientGroup: MultiThreadedEventLoopGroup
    let configuration: BillingConfiguration

    static func configuration(directory: String, pollSeconds: Double) -> BillingConfiguration {
        var configuration = BillingConfiguration()
        configuration.dataDirectory = directory
        configuration.listen.port = 0
        configuration.sandbox.port = 0
        configuration.poller.intervalSeconds = pollSeconds
        configuration.limits.shutdownGraceSeconds = 1
        // A loaded test machine may take seconds for a handshake: the tests
        // prove behaviour, not this deadline.
        configuration.tls.handshakeTimeoutSeconds = 120
        return configuration
    }

    init(
        pollSeconds: Double = 0.2,
        directory existing: String? = nil,
        configure: (inout BillingConfiguration) -> Void = { _ in }
    ) async throws {
        directory =
            existing
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("billingd-\(UUID().uuidString)").path
        var configuration = Self.configuration(directory: directory, pollSeconds: pollSeconds)
        configure(&configuration)
        self.configuration = configuration
        var logger = Logger(label: "billingd-test")
        logger.logLevel = .warning
        application = try await BillingApplication.start(configuration, logger: logger)
        clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    func stop(removeData: Bool = true) async {
        await application.shutdown()
        try? await clientGroup.shutdownGracefully()
        if removeData { try? FileManager.default.removeItem(atPath: directory) }
    }

    var tls: String { application.tlsDirectory }

    /// A transport with the named development certificate ("internal", "operator",
    /// or one made by `accountCertificate`).
    func transport(_ name: String) throws -> TTRPCClient {
        let context = try TLSContext(
            TLSConfiguration(
                role: .client(serverName: "localhost"),
                certificateChainPath: "\(tls)/\(name).pem",
                privateKeyPath: "\(tls)/\(name)-key.pem",
                trustRootsPath: "\(tls)/ca.pem"
            )
        )
        return TTRPCClient(
            host: "127.0.0.1",
            port: application.port,
            tls: context,
            group: clientGroup,
            connectTimeout: .seconds(120)
        )
    }

    /// Issues a client certificate scoped to one account; returns its name.
    func accountCertificate(_ accountID: String) throws -> String {
        try certificate("account-\(accountID)", uris: ["billing://account/\(accountID)"])
    }

    /// Issues a client certificate with these URI names, signed by the
    /// deployment's CA; returns its name for `transport`/`clients`.
    func certificate(_ name: String, uris: [String]) throws -> String {
        let authority = try CertificateAuthority(
            loading: PEMCredential(
                certificatePEM: try String(contentsOfFile: "\(tls)/ca.pem", encoding: .utf8),
                privateKeyPEM: try String(contentsOfFile: "\(tls)/ca-key.pem", encoding: .utf8)
            )
        )
        try DevelopmentCertificates.write(
            try authority.issue(commonName: name, usage: .client, uris: uris),
            name: name,
            in: tls
        )
        return name
    }

    struct Clients {
        let balance: BillingV1.BalanceClient
        let accounts: BillingV1.AccountsClient
        let methods: BillingV1.PaymentMethodsClient
        let renewal: BillingV1.RenewalClient
        let migration: BillingV1.MigrationPaymentClient
    }

    func clients(_ name: String) throws -> Clients {
        let transport = try transport(name)
        return Clients(
            balance: BillingV1.BalanceClient(transport: transport),
            accounts: BillingV1.AccountsClient(transport: transport),
            methods: BillingV1.PaymentMethodsClient(transport: transport),
            renewal: BillingV1.RenewalClient(transport: transport),
            migration: BillingV1.MigrationPaymentClient(transport: transport)
        )
    }

    /// Provisions an account with one payer, as the provisioning service would.
    func account(_ id: String) async throws -> (account: BillingV1.Account, payer: BillingV1.Payer) {
        let internalClients = try clients("internal")
        var create = BillingV1.CreateAccountRequest()
        create.accountId = id
        create.displayName = "Account \(id)"
        let account = try await internalClients.accounts.createAccount(create)
        var payer = BillingV1.CreatePayerRequest()
        payer.accountId = id
        payer.displayName = "Payer of \(id)"
        payer.email = "\(id)@example.com"
        return (account, try await internalClients.accounts.createPayer(payer))
    }

    /// Presses Pay or Decline on the sandbox page, as a person would: an HTTP
    /// POST on loopback. Returns the HTTP status and the Location header.
    func press(_ redirectURL: String, approve: Bool) async throws -> (status: Int, location: String) {
        let response = try await pagePost(redirectURL, approve: approve)
        let location =
            response.head.first { $0.lowercased().hasPrefix("location:") }
            .map { String($0.dropFirst(9)).trimmingCharacters(in: .whitespaces) } ?? ""
        return (response.status, location)
    }

    /// The same, with the page's body (what the person reads).
    func pressPage(_ redirectURL: String, approve: Bool) async throws -> (status: Int, body: String) {
        let response = try await pagePost(redirectURL, approve: approve)
        return (response.status, response.body)
    }

    private func pagePost(
        _ redirectURL: String,
        approve: Bool
    ) async throws -> (status: Int, head: [String], body: String) {
        guard let url = URL(string: redirectURL), url.host == "127.0.0.1", let port = url.port else {
            throw TestFailure("redirect URL \(redirectURL) is not the loopback sandbox")
        }
        let request =
            "POST \(url.path)/\(approve ? "approve" : "decline") HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        let response = try await RawHTTP.exchange(host: "127.0.0.1", port: port, request: request, group: clientGroup)
        let sections = response.components(separatedBy: "\r\n\r\n")
        let head = sections.first?.components(separatedBy: "\r\n") ?? []
        let status = Int(head.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, head, sections.dropFirst().joined(separator: "\r\n\r\n"))
    }

    /// Polls (bounded) until `condition` holds for the payment.
    func waitForPayment(
        _ id: String,
        client: BillingV1.BalanceClient,
        within: Duration = .seconds(120),
        until condition: (BillingV1.Payment) -> Bool
    ) async throws -> BillingV1.Payment {
        let deadline = ContinuousClock.now.advanced(by: within)
        var request = BillingV1.GetPaymentRequest()
        request.paymentId = id
        while true {
            let payment = try await client.getPayment(request)
            if condition(payment) { return payment }
            guard ContinuousClock.now < deadline else { return payment }
            try await Task.sleep(for: .milliseconds(25))
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A one-request HTTP/1.1 exchange over a NIO socket: enough for the sandbox
/// page, and never leaves loopback (no redirects are followed).
enum RawHTTP {
    /// Collects what the server sends until it closes, or until the text
    /// holds `needle` (a stream that does not end by itself).
    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var text = ""
        let needle: String?
        let done: EventLoopPromise<String>

        init(needle: String?, done: EventLoopPromise<String>) {
            self.needle = needle
            self.done = done
        }

        /// Runs on the channel's event loop, as do the handler's callbacks.
        private var answered = false

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            text += String(buffer: unwrapInboundIn(data))
            if let needle, text.contains(needle) { answer() }
        }

        func channelInactive(context: ChannelHandlerContext) {
            answer()
        }

        func answer() {
            guard !answered else { return }
            answered = true
            done.succeed(text)
        }
    }

    static func exchange(host: String, port: Int, request: String, group: any EventLoopGroup) async throws -> String {
        try await open(host: host, port: port, request: request, until: nil, group: group).text
    }

    /// Sends `request` and returns what came until `needle` (or the close,
    /// or two minutes: a test that waits for what never comes fails instead
    /// of hanging), with the channel still open for the caller to close.
    static func open(
        host: String,
        port: Int,
        request: String,
        until needle: String?,
        group: any EventLoopGroup
    ) async throws -> (text: String, channel: any Channel) {
        let promise = group.next().makePromise(of: String.self)
        let collector = Collector(needle: needle, done: promise)
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in channel.pipeline.addHandler(collector) }
            .connect(host: host, port: port).get()
        try await channel.writeAndFlush(ByteBuffer(string: request)).get()
        let deadline = channel.eventLoop.scheduleTask(in: .minutes(2)) { collector.answer() }
        let text = try await promise.futureResult.get()
        deadline.cancel()
        return (text, channel)
    }
}

extension BillingV1.PaymentOption {
    static func system(
        _ system: BillingV1.PaymentSystem,
        save: Bool = false,
        returnURL: String = "https://panel.example/payments"
    ) -> Self {
        var option = Self()
        var chosen = BillingV1.PaymentSystemOption()
        chosen.system = system
        chosen.saveMethod = save
        chosen.returnUrl = returnURL
        option.option = .paymentSystem(chosen)
        return option
    }

    static var invoice: Self {
        var option = Self()
        option.option = .invoice(BillingV1.InvoiceOption())
        return option
    }

    static var balance: Self {
        var option = Self()
        option.option = .balance(BillingV1.BalanceOption())
        return option
    }

    static func saved(_ id: String) -> Self {
        var option = Self()
        var saved = BillingV1.SavedMethodOption()
        saved.paymentMethodId = id
        option.option = .savedMethod(saved)
        return option
    }
}

extension BillingV1.Money {
    static func usd(_ minor: Int64) -> Self {
        var money = Self()
        money.amountMinorUnits = minor
        money.currency = "USD"
        return money
    }
}

func topUpRequest(
    account: String,
    payer: String,
    minor: Int64,
    option: BillingV1.PaymentOption
) -> BillingV1.CreateTopUpRequest {
    var request = BillingV1.CreateTopUpRequest()
    request.accountId = account
    request.payerId = payer
    request.amount = .usd(minor)
    request.option = option
    return request
}
