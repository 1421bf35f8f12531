import ArgumentParser
import BillingAPI
import BillingMessages
import BillingRPC
import BillingTLS
import BillingTransport
import Foundation
import NIOPosix

/// Where to connect and as whom; shared by every command.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: "billingd's host:port.")
    var address: String?

    @Option(name: .long, help: "Client certificate (PEM).")
    var cert: String?

    @Option(name: .long, help: "Client private key (PEM).")
    var key: String?

    @Option(name: .long, help: "CA that issued billingd's certificate (PEM).")
    var ca: String?

    @Option(
        name: .long,
        help: "Name expected in billingd's certificate (default: localhost for 127.0.0.1, else the host)."
    )
    var serverName: String?

    @Option(name: .customLong("as"), help: "With the development certificates: internal or operator.")
    var role: String = "internal"

    @Option(name: .long, help: "Config file (default ~/.config/billing/config.json).")
    var config: String?

    @Option(name: .long, help: "Seconds to wait for each call.")
    var timeout: Double = 30

    @Flag(name: .long, help: "Machine-readable JSON output.")
    var json = false
}

/// The settings in effect, with where each came from (for `billing doctor`).
struct ResolvedConnection {
    var host: String
    var port: Int
    var cert: String
    var key: String
    var ca: String
    var serverName: String
    var sources: [String: String]
}

/// `~/.config/billing/config.json`: {"address": "...", "cert": "...", "key": "...", "ca": "...", "serverName": "..."}.
struct ConfigFile: Decodable {
    var address: String?
    var cert: String?
    var key: String?
    var ca: String?
    var serverName: String?
}

extension ConnectionOptions {
    func resolve() throws -> ResolvedConnection {
        let environment = ProcessInfo.processInfo.environment
        let configPath = config ?? (environment["HOME"].map { "\($0)/.config/billing/config.json" } ?? "")
        var file = ConfigFile()
        if let data = FileManager.default.contents(atPath: configPath) {
            do {
                file = try JSONDecoder().decode(ConfigFile.self, from: data)
            } catch {
                throw UsageError("config file \(configPath) is not valid: \(error.localizedDescription)")
            }
        } else if config != nil {
            throw UsageError("cannot read config file \(configPath)")
        }
        guard ["internal", "operator"].contains(role) else { throw UsageError("--as must be internal or operator") }
        let devDirectory = (environment["BILLINGD_DATA_DIR"] ?? "./billingd-data") + "/tls"
        var sources: [String: String] = [:]

        func pick(
            _ name: String,
            _ flag: String?,
            _ env: String,
            _ fromFile: String?,
            _ fallback: String,
            _ fallbackSource: String
        ) -> String {
            if let flag {
                sources[name] = "--\(name)"
                return flag
            }
            if let value = environment[env] {
                sources[name] = "$\(env)"
                return value
            }
            if let fromFile {
                sources[name] = configPath
                return fromFile
            }
            sources[name] = fallbackSource
            return fallback
        }
        let address = pick("address", self.address, "BILLING_ADDRESS", file.address, "127.0.0.1:7443", "default")
        let dev = "development set in \(devDirectory)"
        let cert = pick("cert", self.cert, "BILLING_CERT", file.cert, "\(devDirectory)/\(role).pem", dev)
        let key = pick("key", self.key, "BILLING_KEY", file.key, "\(devDirectory)/\(role)-key.pem", dev)
        let ca = pick("ca", self.ca, "BILLING_CA", file.ca, "\(devDirectory)/ca.pem", dev)

        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
            (1...65535).contains(port)
        else {
            throw UsageError("address must be host:port, not \"\(address.prefix(64))\"")
        }
        let host = String(address[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let serverName = serverName ?? file.serverName ?? (host == "127.0.0.1" || host == "::1" ? "localhost" : host)
        return ResolvedConnection(
            host: host,
            port: port,
            cert: cert,
            key: key,
            ca: ca,
            serverName: serverName,
            sources: sources
        )
    }

    /// A connected-on-first-use transport; closes with the process.
    func transport() throws -> TTRPCClient {
        let resolved = try resolve()
        for (what, path) in [("certificate", resolved.cert), ("key", resolved.key), ("CA", resolved.ca)]
        where !FileManager.default.isReadableFile(atPath: path) {
            throw ConnectionProblem(
                "cannot read the \(what) \(path) (\(resolved.sources[what == "certificate" ? "cert" : what.lowercased()] ?? "")); is billingd running here, or give --cert/--key/--ca? Try `billing doctor`."
            )
        }
        let context: TLSContext
        do {
            context = try TLSContext(
                TLSConfiguration(
                    role: .client(serverName: resolved.serverName),
                    certificateChainPath: resolved.cert,
                    privateKeyPath: resolved.key,
                    trustRootsPath: resolved.ca
                )
            )
        } catch {
            throw ConnectionProblem("TLS setup failed: \(error)")
        }
        return TTRPCClient(
            host: resolved.host,
            port: resolved.port,
            tls: context,
            group: MultiThreadedEventLoopGroup.singleton,
            connectTimeout: .seconds(5)
        )
    }

    var callOptions: CallOptions {
        CallOptions(timeout: .seconds(timeout))
    }
}

/// The typed clients over one transport.
struct Clients {
    let balance: BillingV1.BalanceClient
    let methods: BillingV1.PaymentMethodsClient
    let renewal: BillingV1.RenewalClient
    let migration: BillingV1.MigrationPaymentClient
    let accounts: BillingV1.AccountsClient
    let operations: BillingV1.OperationsClient
    let health: GrpcHealthV1.HealthClient

    init(_ options: ConnectionOptions) throws {
        let transport = try options.transport()
        balance = .init(transport: transport)
        methods = .init(transport: transport)
        renewal = .init(transport: transport)
        migration = .init(transport: transport)
        accounts = .init(transport: transport)
        operations = .init(transport: transport)
        health = .init(transport: transport)
    }
}
