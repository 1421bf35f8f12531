import ArgumentParser
import BillingAPI
import BillingMessages
import BillingRPC
import BillingTLS
import Foundation

struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow payment events live, resuming after the last sequence seen.",
        discussion: """
            Prints each event as it commits, one line at a time even into a pipe or file. If the \
            connection drops, it reconnects and resumes after the last sequence it printed, so nothing \
            is lost or repeated. With --resume NAME the last sequence is also kept in \
            $XDG_STATE_HOME/billing/watch-NAME (~/.local/state/billing/ by default), so a watcher \
            started again later continues where it stopped. Stop with Ctrl-C.

            Examples:
              billing watch --account acc-1
              billing watch --account acc-1 --resume panel --json >> events.jsonl
              billing watch --all --after 1200 --json      # internal services and operators
            """
    )

    @Option(help: "The account to follow.") var account: String?
    @Flag(help: "Every account (internal services and operators).") var all = false
    @Option(help: "Start after this sequence (0: from the beginning).") var after: UInt64 = 0
    @Option(help: "Stop after this many events (0: never).") var count: Int = 0
    @Option(help: "Keep the last sequence seen under this name and continue from it next time.") var resume: String?
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        guard (account != nil) != all else { throw ValidationError("give --account ID or --all") }
        if let resume,
            resume.isEmpty || resume.count > 64
                || !resume.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) })
        {
            throw ValidationError("--resume takes a name of 1 to 64 letters, digits, '-', '_', '.'")
        }
        if resume != nil && after != 0 { throw ValidationError("choose --after or --resume") }
    }

    /// $XDG_STATE_HOME/billing/watch-NAME (one file per name and what it follows).
    private var stateFile: URL? {
        guard let resume else { return nil }
        let environment = ProcessInfo.processInfo.environment
        let base =
            environment["XDG_STATE_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: environment["HOME"] ?? NSTemporaryDirectory()).appendingPathComponent(
                ".local/state"
            )
        return base.appendingPathComponent("billing").appendingPathComponent("watch-\(resume)-\(account ?? "all")")
    }

    private func savedCursor() -> UInt64 {
        guard let stateFile, let text = try? String(contentsOf: stateFile, encoding: .utf8) else { return 0 }
        return UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// Written whole (a temporary file renamed over the old one): a watcher
    /// killed mid-write keeps the previous sequence, never half of one.
    private func save(_ cursor: UInt64) {
        guard let stateFile else { return }
        try? FileManager.default.createDirectory(
            at: stateFile.deletingLastPathComponent(),
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        try? Data("\(cursor)\n".utf8).write(to: stateFile, options: .atomic)
    }

    func run() async throws {
        var cursor = resume != nil ? savedCursor() : after
        var seen = 0
        var failures = 0
        let clients: Clients
        do {
            clients = try Clients(connection)
        } catch {
            throw fail(error)
        }
        while true {
            do {
                let stream: ClientStream<BillingV1.PaymentEvent>
                if let account {
                    var request = BillingV1.WatchPaymentsRequest()
                    request.accountId = account
                    request.afterSequence = cursor
                    stream = try await clients.balance.watchPayments(request)
                } else {
                    var request = BillingV1.WatchAllPaymentsRequest()
                    request.afterSequence = cursor
                    stream = try await clients.balance.watchAllPayments(request)
                }
                for try await event in stream {
                    failures = 0
                    print(event)
                    cursor = event.sequence
                    save(cursor)
                    seen += 1
                    if count > 0 && seen >= count { return }
                }
            } catch let error as RPCError
                where [.unavailable, .resourceExhausted, .deadlineExceeded].contains(error.code) && failures < 5
            {
                // Reconnect and resume after the cursor.
                failures += 1
                Output.error("stream ended (\(error.message)); resuming after \(cursor)")
                try? await Task.sleep(for: .seconds(failures))
            } catch {
                throw fail(error)
            }
        }
    }

    private func print(_ event: BillingV1.PaymentEvent) {
        if connection.json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            if let data = try? encoder.encode(EventView(event)) { Output.line(String(decoding: data, as: UTF8.self)) }
            return
        }
        let head = "#\(event.sequence) \(Output.time(event.atUnixMs)) \(event.accountId)"
        switch event.event {
        case .paymentStatusChanged(let c)?:
            let payment = c.payment ?? BillingV1.Payment()
            let from = c.previousStatus == .unspecified ? "created" : "\(Output.status(c.previousStatus)) →"
            Output.line(
                "\(head) payment \(payment.id) \(Output.money(payment.amount)) \(from) \(Output.status(payment.status))"
                    + (payment.failureReason.isEmpty ? "" : " (\(payment.failureReason))")
            )
        case .methodStatusChanged(let c)?:
            Output.line(
                "\(head) method \(c.method?.id ?? "") \(c.method?.displayName ?? "") \(c.previousStatus) → \(c.method?.status ?? .unspecified)"
            )
        case .balanceChanged(let c)?:
            Output.line(
                "\(head) balance \(Output.money(c.balance)) (\((c.delta?.amountMinorUnits ?? 0) >= 0 ? "+" : "")\(Output.money(c.delta)))"
            )
        case .notification(let n)?:
            Output.line("\(head) notification: \(n.title): \(n.body)")
        case .paymentReversed(let r)?:
            Output.line("\(head) payment \(r.paymentId) \(r.kind) \(Output.money(r.amount)) (\(r.reversalReference))")
        case nil:
            Output.line("\(head) (an event this client does not know)")
        }
    }
}

struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Say what billing would connect to, and why a connection fails.",
        discussion: """
            With --storage, billingd also checks its whole database (SQLite's integrity check, every \
            balance against its ledger, the event log): slow on a large database.

            Examples:
              billing doctor --address billing.internal:7443
              billing doctor --as operator --storage
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Flag(name: .long, help: "Ask billingd to check its whole database too (operators, internal services).")
    var storage = false

    func run() async throws {
        var ok = true
        func check(_ name: String, _ good: Bool, _ detail: String) {
            ok = ok && good
            Output.line("\(good ? "✓" : "✗") \(name): \(detail)")
        }
        let resolved: ResolvedConnection
        do {
            resolved = try connection.resolve()
        } catch {
            throw fail(error)
        }
        check(
            "address",
            true,
            "\(resolved.host):\(resolved.port) (from \(resolved.sources["address"] ?? "?")), expecting the name \(resolved.serverName)"
        )
        for (label, path, source) in [
            ("certificate", resolved.cert, "cert"), ("key", resolved.key, "key"), ("CA", resolved.ca, "ca"),
        ] {
            let readable = FileManager.default.isReadableFile(atPath: path)
            check(
                label,
                readable,
                "\(path) (from \(resolved.sources[source] ?? "?"))" + (readable ? "" : ": cannot read it")
            )
        }
        if FileManager.default.isReadableFile(atPath: resolved.cert) {
            do {
                let file = try CertificateFile.read(resolved.cert)
                let info = (
                    notBefore: Date(timeIntervalSince1970: Double(file.notBefore)),
                    notAfter: Date(timeIntervalSince1970: Double(file.notAfter)),
                    uris: file.uris
                )
                let now = Date()
                let valid = info.notBefore <= now && now < info.notAfter
                check(
                    "certificate validity",
                    valid,
                    "\(info.notBefore) to \(info.notAfter)\(valid ? "" : " — check the certificate and this machine's clock (now \(now))")"
                )
                // The server's own rule decides, so doctor never approves what billingd refuses.
                let peer = PeerIdentity(commonName: file.commonName, uris: file.uris)
                if let principal = Principal(peer: peer) {
                    check("role", true, "\(principal)")
                } else {
                    check(
                        "role",
                        false,
                        "\(Principal.refusal(peer) ?? "no role"): billingd will refuse everything but health"
                    )
                }
            } catch {
                check("certificate", false, "\(error)")
            }
        }
        guard ok else { throw Exit.unavailable }
        let clients: Clients
        do {
            clients = try Clients(connection)
            let response = try await clients.health.check(
                GrpcHealthV1.HealthCheckRequest(),
                options: CallOptions(timeout: .seconds(5))
            )
            check("billingd", response.status == .serving, "TLS handshake and health check: \(response.status)")
        } catch {
            check(
                "billingd",
                false,
                "\(error) — is billingd running at \(resolved.host):\(resolved.port), and does its certificate match \(resolved.serverName) and the CA?"
            )
            throw Exit.unavailable
        }
        if storage {
            do {
                let checked = try await clients.operations.checkStorage(
                    BillingV1.CheckStorageRequest(),
                    options: CallOptions(timeout: .seconds(600))
                )
                check(
                    "storage",
                    checked.ok,
                    checked.ok
                        ? "database intact; \(checked.accountsChecked) balances match their ledgers"
                        : checked.problems.joined(separator: "\n    ")
                )
            } catch {
                check("storage", false, "\(error)")
            }
        }
        if !ok { throw Exit.unavailable }
    }
}
