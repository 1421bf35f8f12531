import ArgumentParser
import BillingServer
import Foundation
import Logging

/// billingd: the billing back end. With no options it runs the embedded
/// default: an SQLite file, development certificates and the sandbox payment
/// system, all in ./billingd-data.
@main
struct BillingDaemon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "billingd",
        abstract: "The billing back end of the hosting control panel.",
        discussion: """
            Serves the billing.v1 services over ttrpc on mutual TLS. Configuration comes from \
            a JSON file (see deploy/billingd.example.json), then BILLINGD_* environment \
            variables (BILLINGD_DATA_DIR, BILLINGD_LISTEN, BILLINGD_LOG_LEVEL, BILLINGD_LOG_FORMAT, \
            BILLINGD_POLL_INTERVAL_SECONDS, BILLINGD_SANDBOX_PORT), then defaults.

            Examples:
              billingd                                  # embedded default in ./billingd-data
              billingd --config /etc/billingd.json
              billingd --config /etc/billingd.json --check-config
              kill -HUP $(pidof billingd)                # reload the TLS certificate, key and client CA
              billingd --config /etc/billingd.json --backup-to /var/backups/billing-$(date +%F).sqlite
              billingd --config /etc/billingd-postgres.json --migrate-storage-from ./billingd-data/billing.sqlite
            """
    )

    @Option(name: .long, help: "The JSON configuration file (default: $BILLINGD_CONFIG, else none).")
    var config: String?

    @Option(name: .long, help: "The data directory (overrides the file and BILLINGD_DATA_DIR).")
    var dataDir: String?

    @Flag(name: .long, help: "Check the configuration, print the result and exit (0: valid, 78: invalid).")
    var checkConfig = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Write a consistent copy of the database to FILE and exit (0: written and checked, 1: not).",
            discussion:
                "Safe while billingd serves. The copy is mode 0600, checked whole (integrity, balances against the ledger, the event log), and never overwrites a file. Restore: stop billingd, put the copy in place of billing.sqlite (and remove billing.sqlite-wal and -shm), start billingd.",
            valueName: "FILE"
        )
    )
    var backupTo: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Copy the SQLite database FILE into the configured PostgreSQL database (storage.postgres) and exit (0: copied and checked, 1: not).",
            discussion:
                "Stop every billingd first. FILE is only read (a checked copy of it is made in the temporary folder). The PostgreSQL database must be empty; everything is copied in one transaction with ids, event sequences, ledger keys and idempotency records intact, then row counts, ledger sums and the event log are compared.",
            valueName: "FILE"
        )
    )
    var migrateStorageFrom: String?

    func run() async throws {
        // A SIGHUP before the reload handler is in place must not end the
        // process (its default action): ignored until then, and for the
        // one-shot modes (a backup goes on to its end).
        signal(SIGHUP, SIG_IGN)
        // Every file billingd creates (database, -wal, -shm, sandbox state,
        // development keys) is its owner's alone, whatever the shell's umask.
        umask(0o077)
        var environment = ProcessInfo.processInfo.environment
        if let dataDir { environment["BILLINGD_DATA_DIR"] = dataDir }
        let configuration: BillingConfiguration
        do {
            configuration = try BillingConfiguration.load(
                path: config ?? environment["BILLINGD_CONFIG"],
                environment: environment
            )
            let problems = configuration.validate() + configuration.secretProblems(environment: environment)
            if !problems.isEmpty { throw ConfigurationError(problems: problems) }
        } catch {
            Self.report("\(error)", json: environment["BILLINGD_LOG_FORMAT"] == "json")
            throw ExitCode(78)  // EX_CONFIG
        }
        if let backupTo {
            do {
                let copied = try await BillingApplication.backup(configuration, to: backupTo)
                print(
                    "backup written to \(backupTo) and checked: \(copied.accounts) accounts, events up to \(copied.latestSequence)"
                )
            } catch {
                Self.report("backup failed: \(error)", json: configuration.logging.format == "json")
                throw ExitCode(1)
            }
            return
        }
        if let migrateStorageFrom {
            do {
                let report = try await BillingApplication.migrateStorage(
                    configuration,
                    from: migrateStorageFrom,
                    logger: Logger(label: "billingd")
                )
                print(report)
            } catch {
                Self.report("storage migration failed: \(error)", json: configuration.logging.format == "json")
                throw ExitCode(1)
            }
            return
        }
        if checkConfig {
            // PostgreSQL is reached before anything is printed: an unreachable database is an invalid configuration.
            let storage: String
            do {
                storage = try await BillingApplication.probeStorage(configuration) ?? configuration.resolvedDatabasePath
            } catch {
                Self.report("storage.postgres: \(error)", json: environment["BILLINGD_LOG_FORMAT"] == "json")
                throw ExitCode(78)
            }
            for warning in configuration.permissionWarnings() { print("warning: \(warning)") }
            print("configuration is valid")
            print("  listen:    \(configuration.listen.host):\(configuration.listen.port) (mutual TLS)")
            print("  data:      \(configuration.dataDirectory)")
            print("  database:  \(storage)")
            print(
                "  tls:       \(configuration.tls.certificate.isEmpty ? "development set in \(configuration.dataDirectory)/tls" : configuration.tls.certificate)"
            )
            print(
                "  sandbox:   \(configuration.sandbox.enabled ? "http://\(configuration.sandbox.host):\(configuration.sandbox.port)" : "off")"
            )
            print("  stripe:    \(configuration.stripe.enabled ? configuration.stripe.baseURL : "off")")
            print("  paypal:    \(configuration.paypal.enabled ? configuration.paypal.baseURL : "off")")
            print(
                "  webhooks:  \(configuration.webhooks.enabled ? "http://\(configuration.webhooks.host):\(configuration.webhooks.port)/webhooks/stripe" : "off")"
            )
            print("  poller:    every \(configuration.poller.intervalSeconds) s")
            let invoices = configuration.invoices
            print(
                "  invoices:  \(invoices.issuer.isSet ? "issued by \(invoices.issuer.name)" : "development placeholder issuer (set invoices.issuer)"), numbers like \(invoices.sampleNumber), due in \(invoices.dueDays) days, void \(invoices.graceDays) days later"
            )
            return
        }

        let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
        let json = configuration.logging.format == "json"
        LoggingSystem.bootstrap { label in
            if json {
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "billingd")
        for warning in configuration.permissionWarnings() { logger.warning("\(warning)") }
        let application: BillingApplication
        do {
            application = try await BillingApplication.start(
                configuration,
                logger: logger,
                signals: [.sigterm, .sigint],
                reloadSignal: .sighup
            )
        } catch let error as ConfigurationError {
            Self.report("\(error)", json: configuration.logging.format == "json")
            throw ExitCode(78)
        } catch {
            logger.critical("billingd could not start", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
        // Until SIGTERM or SIGINT (a graceful shutdown), or a part fails.
        do {
            try await application.run()
        } catch {
            logger.critical("billingd stopped because a part failed", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
    }

    /// A problem before logging is set up, on standard error: a line for
    /// people, or one JSON object when JSON logs were asked for.
    static func report(_ problem: String, json: Bool) {
        guard json else {
            FileHandle.standardError.write(Data("billingd: \(problem)\n".utf8))
            return
        }
        var handler = JSONLogHandler(label: "billingd")
        handler.logLevel = .trace
        handler.log(
            level: .critical,
            message: "\(problem)",
            metadata: nil,
            source: "billingd",
            file: #fileID,
            function: #function,
            line: #line
        )
    }
}
