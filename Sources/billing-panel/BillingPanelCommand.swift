import ArgumentParser
import BillingPanel
import Foundation
import Hummingbird
import Logging

/// billing-panel: the reference "Balance top-up" pages on billingd's API, for
/// a browser on this machine. Run it from the folder where `swift run
/// billingd` runs and it uses billingd's development certificates.
@main
struct BillingPanelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "billing-panel",
        abstract: "The reference control-panel pages (top-up, history, renewals, migration) on billingd.",
        discussion: """
            A client of billingd like any internal service: mutual TLS with the internal client \
            certificate, billingd's generated API, nothing else. Configuration comes from a JSON \
            file (see deploy/billing-panel.example.json), then BILLING_PANEL_* environment \
            variables (BILLING_PANEL_LISTEN, BILLING_PANEL_BILLINGD, BILLING_PANEL_PUBLIC_URL) and \
            BILLINGD_DATA_DIR, then the options below, then defaults. The sign-in is for \
            development (pick an account, no password), so the panel listens on loopback only.

            Examples:
              billing-panel                               # next to `swift run billingd`: http://127.0.0.1:7080
              billing-panel --listen 127.0.0.1:8080 --billingd 127.0.0.1:7443
              billing-panel --config panel.json --check-config
            """
    )

    @Option(name: .long, help: "The JSON configuration file (default: $BILLING_PANEL_CONFIG, else none).")
    var config: String?

    @Option(name: .long, help: "host:port to serve on, loopback only (default 127.0.0.1:7080).")
    var listen: String?

    @Option(name: .long, help: "billingd's host:port (default 127.0.0.1:7443).")
    var billingd: String?

    @Option(name: .long, help: "billingd's data folder, for its development certificates (default ./billingd-data).")
    var dataDir: String?

    @Flag(name: .long, help: "Check the configuration, print the result and exit (0: valid, 78: invalid).")
    var checkConfig = false

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        var configuration: PanelConfiguration
        do {
            configuration = try PanelConfiguration.load(
                path: config ?? environment["BILLING_PANEL_CONFIG"],
                environment: environment
            )
            if let listen { configuration.listen = listen }
            if let billingd { configuration.billingd.address = billingd }
            if let dataDir { configuration.dataDirectory = dataDir }
            let problems = configuration.validate()
            if !problems.isEmpty { throw PanelConfigurationError(problems: problems) }
        } catch {
            FileHandle.standardError.write(Data("billing-panel: \(error)\n".utf8))
            throw ExitCode(78)  // EX_CONFIG
        }
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        var logger = Logger(label: "billing-panel")
        logger.logLevel = .info
        let panel: Panel
        do {
            panel = try Panel(configuration: configuration, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("billing-panel: \(error)\n".utf8))
            throw ExitCode(78)
        }
        if checkConfig {
            let files = configuration.tlsFiles
            print("configuration is valid")
            print("  listen:   http://\(configuration.listen) (loopback only)")
            print("  billingd: \(configuration.billingd.address) (mutual TLS, certificate \(files.certificate))")
            return
        }
        let host = HostPortText.host(configuration.listen)
        let startupLogger = logger
        let application = try panel.application { port in
            startupLogger.info("billing-panel listening", metadata: ["url": "http://\(host):\(port)"])
        }
        try await application.runService()
    }
}

/// The host part of host:port as a URL writes it ([::1] for IPv6), for the startup line.
enum HostPortText {
    static func host(_ address: String) -> String {
        guard let colon = address.lastIndex(of: ":") else { return address }
        let host = String(address[..<colon])
        return host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
    }
}
