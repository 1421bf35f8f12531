import BillingAPI
import BillingMessages
import BillingTestSupport
import Foundation
import Synchronization
import Testing

/// Runs the built executables (beside the test bundle) as a person or a script would.
enum Executable {
    static func path(_ name: String) -> String? {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [directory, directory.deletingLastPathComponent()] {
            let url = candidate.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: url.path) { return url.path }
        }
        return nil
    }

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs to the end with both outputs collected.
    static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String] = [:],
        input: String? = nil,
        directory: String? = nil
    ) async -> Result {
        let outcome = await ChildProcess.run(
            executable,
            arguments,
            adding: environment.merging(["NO_COLOR": "1"]) { given, _ in given },
            directory: directory,
            input: Array((input ?? "").utf8)
        )
        return Result(status: outcome.status, stdout: outcome.outputText, stderr: outcome.errorText)
    }
}

extension ServerFixture {
    /// `billing` against this billingd, with its development certificates.
    func billing(
        _ arguments: [String],
        as role: String = "internal",
        input: String? = nil
    ) async throws -> Executable.Result {
        let path = try #require(Executable.path("billing"), "build the billing executable first (swift build)")
        return await Executable.run(
            path,
            arguments + ["--address", "127.0.0.1:\(application.port)", "--as", role],
            environment: ["BILLINGD_DATA_DIR": directory],
            input: input
        )
    }
}

/// The JSON object `billing --json` printed.
func json(_ text: String) throws -> [String: Any] {
    try #require(
        try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
        "not a JSON object: \(text)"
    )
}

@Suite struct CommandLineTests {
    func billing(
        _ f: ServerFixture,
        _ arguments: [String],
        as role: String = "internal",
        input: String? = nil
    ) async throws -> Executable.Result {
        try await f.billing(arguments, as: role, input: input)
    }

    @Test func aWholeSandboxTopUpFromTheCommandLine() async throws {
        let f = try await ServerFixture()
        #expect(try await billing(f, ["accounts", "create", "acc-cli", "--name", "CLI"]).status == 0)
        let payerResult = try await billing(f, ["accounts", "add-payer", "acc-cli", "--name", "Jane", "--json"])
        let payerID = try json(payerResult.stdout)["id"] as? String
        #expect(payerID?.hasPrefix("pyr_") == true)

        let created = try await billing(
            f,
            ["topup", "--account", "acc-cli", "--amount", "100.5", "--system", "sandbox", "--save-method", "--json"]
        )
        #expect(created.status == 0, "\(created.stderr)")
        let body = try json(created.stdout)
        let payment = try #require(body["payment"] as? [String: Any])
        let amount = try #require(payment["amount"] as? [String: Any])
        #expect(amount["amount_minor_units"] as? Int == 10050)
        #expect(amount["currency"] as? String == "USD")
        #expect(payment["status"] as? String == "new")
        let redirect = try #require(body["redirect_url"] as? String)
        let id = try #require(payment["id"] as? String)

        #expect(try await f.press(redirect, approve: true).status == 303)
        let waited = try await billing(f, ["payment", "show", id, "--wait", "--json"])
        #expect(waited.status == 0, "\(waited.stderr)")
        #expect(try json(waited.stdout)["status"] as? String == "paid")

        let balance = try await billing(f, ["balance", "--account", "acc-cli", "--json"])
        #expect(try (json(balance.stdout)["balance"] as? [String: Any])?["amount_minor_units"] as? Int == 10050)

        // The saved method is now the default: a top-up with no method uses it, at once.
        let again = try await billing(f, ["topup", "--account", "acc-cli", "--amount", "25", "--json"])
        #expect(try (json(again.stdout)["payment"] as? [String: Any])?["status"] as? String == "paid")

        let table = try await billing(f, ["payments", "--account", "acc-cli"])
        #expect(table.stdout.contains("100.50 USD"))
        #expect(table.stdout.split(separator: "\n").first?.hasPrefix("ID") == true)
        await f.stop()
    }

    @Test func eachErrorClassHasItsExitCode() async throws {
        let f = try await ServerFixture()
        _ = try await f.account("acc-codes")
        // Usage: bad amount text, conflicting flags, missing amount off a terminal.
        #expect(try await billing(f, ["topup", "--account", "acc-codes", "--amount", "1e3", "--invoice"]).status == 64)
        #expect(
            try await billing(
                f,
                ["topup", "--account", "acc-codes", "--amount", "10", "--invoice", "--system", "sandbox"]
            ).status == 64
        )
        let noAmount = try await billing(f, ["topup", "--account", "acc-codes", "--invoice"])
        #expect(noAmount.status == 64)
        #expect(noAmount.stderr.contains("presets: 100.00, 200.00, 500.00, 1000.00"))
        // Refused by billingd: below the minimum, unknown account, operator spending.
        let below = try await billing(f, ["topup", "--account", "acc-codes", "--amount", "0.49", "--invoice"])
        #expect(below.status == 65)
        #expect(below.stderr.contains("below the minimum of 0.50 USD"))
        #expect(try await billing(f, ["balance", "--account", "acc-nope"]).status == 65)
        #expect(
            try await billing(f, ["topup", "--account", "acc-codes", "--amount", "10", "--invoice"], as: "operator")
                .status == 65
        )
        // Cannot connect.
        let path = try #require(Executable.path("billing"))
        let down = await Executable.run(
            path,
            ["balance", "--account", "acc-codes", "--address", "127.0.0.1:1"],
            environment: ["BILLINGD_DATA_DIR": f.directory]
        )
        #expect(down.status == 69)
        #expect(down.stderr.contains("connection refused"))
        // A payment that ends Cancelled.
        let created = try await billing(
            f,
            ["topup", "--account", "acc-codes", "--amount", "10", "--system", "sandbox", "--json"]
        )
        let body = try json(created.stdout)
        _ = try await f.press(try #require(body["redirect_url"] as? String), approve: false)
        let id = try #require((body["payment"] as? [String: Any])?["id"] as? String)
        let cancelled = try await billing(f, ["payment", "show", id, "--wait"])
        #expect(cancelled.status == 3)
        #expect(cancelled.stderr.contains("was cancelled: declined on the sandbox page"), "\(cancelled.stderr)")
        await f.stop()
    }

    @Test func watchReceivesATransition() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-watch")
        let watcher = Task { try await billing(f, ["watch", "--account", account.id, "--count", "3", "--json"]) }
        try await Task.sleep(for: .milliseconds(300))
        let invoice = try await f.clients("internal").balance.createTopUp(
            topUpRequest(account: account.id, payer: payer.id, minor: 7_00, option: .invoice)
        )
        var settle = BillingV1.SettleInvoiceRequest()
        settle.paymentId = invoice.payment!.id
        _ = try await f.clients("operator").balance.settleInvoice(settle)
        let result = try await watcher.value
        #expect(result.status == 0, "\(result.stderr)")
        let events = try result.stdout.split(separator: "\n").map { try json(String($0)) }
        #expect(
            events.map { $0["kind"] as? String } == [
                "payment_status_changed", "payment_status_changed", "balance_changed",
            ]
        )
        #expect(events[1]["status"] as? String == "paid")
        #expect(events[1]["previous_status"] as? String == "new")
        await f.stop()
    }

    @Test func doctorChecksTheWholeDatabaseOnDemand() async throws {
        let f = try await ServerFixture()
        _ = try await f.account("acc-doctor")
        let healthy = try await billing(f, ["doctor", "--storage"], as: "operator")
        #expect(healthy.status == 0, "\(healthy.stdout)\(healthy.stderr)")
        #expect(healthy.stdout.contains("database intact; 1 balances match their ledgers"), "\(healthy.stdout)")
        // A balance that no longer matches its ledger (written behind billingd's back).
        let script =
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE accounts SET balance_minor = 999\"); c.commit()"
        #expect(
            await Executable.run("/usr/bin/python3", ["-c", script, f.configuration.resolvedDatabasePath]).status == 0
        )
        let damaged = try await billing(f, ["doctor", "--storage"], as: "operator")
        #expect(damaged.status != 0)
        #expect(
            damaged.stdout.contains("account acc-doctor: balance 999 but its ledger sums to 0"),
            "\(damaged.stdout)"
        )
        await f.stop()
    }

    @Test func helpOnEveryCommandHasAnExample() async throws {
        let path = try #require(Executable.path("billing"))
        let commands = [
            "", "accounts", "accounts create", "accounts show", "accounts add-payer", "payment", "payment show",
            "payment refresh",
            "payment cancel", "methods", "methods list", "methods set-default", "methods remove", "renewals",
            "renewals list",
            "renewals quote", "renewals renew", "renewals order", "migration", "migration show", "migration pay",
            "invoice",
            "invoice settle", "invoice cancel", "notifications", "options", "watch", "doctor", "payers", "balance",
            "topup", "payments",
        ]
        for command in commands.map({ $0.split(separator: " ").map(String.init) }) {
            let result = await Executable.run(path, command + ["--help"])
            #expect(result.status == 0)
            #expect(result.stdout.contains("billing "), "\(command)")
            #expect(result.stdout.lowercased().contains("example"), "\(command) has no example")
        }
    }
}

/// Interactive behaviour under a real pseudo-terminal (util-linux `script`).
@Suite struct TerminalTests {
    func underTerminal(_ f: ServerFixture, _ command: String, input: String) async throws -> String {
        let billing = try #require(Executable.path("billing"))
        let line = "\(billing) \(command) --address 127.0.0.1:\(f.application.port)"
        let result = await Executable.run(
            "/usr/bin/script",
            ["-qec", line, "/dev/null"],
            environment: ["BILLINGD_DATA_DIR": f.directory, "TERM": "xterm"],
            input: input
        )
        return result.stdout
    }

    @Test func withNoAmountThePresetsAreOfferedByLetterAndANumberIsAnAmount() async throws {
        let f = try await ServerFixture()
        let (account, _) = try await f.account("acc-tty")
        // "b" picks the second preset; bad input is asked again, not an exit.
        let screen = try await underTerminal(f, "topup --account \(account.id) --invoice", input: "zz\n0.01\nb\n")
        #expect(screen.contains("a) 100.00 USD"))
        #expect(screen.contains("d) 1000.00 USD"))
        #expect(screen.contains("try again"), "\(screen)")
        // A number is always an amount: 2 is 2.00, not the second preset.
        _ = try await underTerminal(f, "topup --account \(account.id) --invoice", input: "2\n")
        var list = BillingV1.ListPaymentsRequest()
        list.accountId = account.id
        let payments = try await f.clients("internal").balance.listPayments(list).payments
        #expect(
            Set(payments.compactMap { $0.amount?.amountMinorUnits }) == [200_00, 2_00],
            "0.01 was refused by billingd's minimum, then b"
        )
        await f.stop()
    }

    @Test func withNoPayerOrMethodTheTerminalOffersThemAsThePageDoes() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-tty-choose")
        var second = BillingV1.CreatePayerRequest()
        second.accountId = account.id
        second.displayName = "Second payer"
        let secondPayer = try await f.clients("internal").accounts.createPayer(second)
        let method = try await MoneySafetyTests.savedCard(f, account: account.id, payer: payer.id)
        // Payer a: its default saved method is selected automatically.
        let first = try await underTerminal(f, "topup --account \(account.id) --amount 12", input: "a\n")
        #expect(first.contains("Payer:"), "\(first)")
        #expect(first.contains("paying with the default saved method"), "\(first)")
        // Payer b has none: its options are offered (c: the invoice, after the payment system).
        let other = try await underTerminal(f, "topup --account \(account.id) --amount 13", input: "b\nzz\nb\n")
        #expect(other.contains("Payment option:"), "\(other)")
        #expect(other.contains("Pay with sandbox"))
        #expect(other.contains("try again"))
        var list = BillingV1.ListPaymentsRequest()
        list.accountId = account.id
        let payments = try await f.clients("internal").balance.listPayments(list).payments
        let charged = payments.first { $0.amount?.amountMinorUnits == 12_00 }
        #expect(charged?.paymentMethodId == method)
        #expect(charged?.status == .paid)
        let invoiced = payments.first { $0.amount?.amountMinorUnits == 13_00 }
        #expect(invoiced?.payerId == secondPayer.id)
        #expect(invoiced?.optionKind == .invoice)
        // Without a terminal, the same is a usage error that lists the choices.
        let piped = try await f.billing(["topup", "--account", account.id, "--amount", "12"])
        #expect(piped.status == 64)
        #expect(piped.stderr.contains("several payers") && piped.stderr.contains("Second payer"), "\(piped.stderr)")
        await f.stop()
    }

    @Test func waitingShowsASpinnerThenTheFinalStatus() async throws {
        let f = try await ServerFixture(pollSeconds: 30)
        let (account, payer) = try await f.account("acc-spin")
        let created = try await f.clients("internal").balance.createTopUp(
            topUpRequest(account: account.id, payer: payer.id, minor: 9_00, option: .system(.sandbox))
        )
        let pay = Task {
            try await Task.sleep(for: .milliseconds(1500))
            _ = try await f.press(created.redirectUrl, approve: true)
        }
        let screen = try await underTerminal(f, "payment show \(created.payment!.id) --wait", input: "")
        try await pay.value
        #expect(Waiterframes.any { screen.contains($0) }, "a spinner frame: \(screen.debugDescription)")
        #expect(screen.contains("✓"))
        #expect(screen.contains("Paid"))
        #expect(screen.contains("\r"), "redrawn in place")
        await f.stop()
    }
}

enum Waiterframes {
    static let frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]
    static func any(_ predicate: (String) -> Bool) -> Bool { frames.contains(where: predicate) }
}

/// billingd as an operator runs it.
@Suite struct DaemonTests {
    @Test func checkConfigAcceptsTheExampleAndRefusesABadFile() async throws {
        let billingd = try #require(Executable.path("billingd"))
        // The example names secret files of a production machine: refused here, saying which.
        let elsewhere = await Executable.run(billingd, ["--check-config", "--config", ConfigurationTests.example])
        #expect(elsewhere.status == 78)
        #expect(elsewhere.stderr.contains("cannot read the Stripe secret key file /etc/billingd/stripe-secret-key"))
        #expect(
            elsewhere.stderr.contains("cannot read the PayPal client secret file /etc/billingd/paypal-client-secret")
        )
        // The same with readable secret files passes.
        let secret = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString)").path
        try "sk_test_x\n".write(toFile: secret, atomically: true, encoding: .utf8)
        var example = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ConfigurationTests.example)))
                as? [String: Any]
        )
        example["stripe"] = (example["stripe"] as? [String: Any] ?? [:]).merging([
            "secretKeyFile": secret, "webhookSecretFile": secret,
        ]) { $1 }
        example["paypal"] = (example["paypal"] as? [String: Any] ?? [:]).merging(["clientSecretFile": secret]) { $1 }
        let local = FileManager.default.temporaryDirectory.appendingPathComponent("example-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: example).write(to: local)
        let good = await Executable.run(billingd, ["--check-config", "--config", local.path])
        #expect(good.status == 0, "\(good.stderr)")
        #expect(good.stdout.contains("configuration is valid"))
        #expect(good.stdout.contains("paypal:    https://api-m.paypal.com"))
        #expect(!good.stdout.contains("sk_test_x"), "secrets are never printed")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).json").path
        try #"{"listen": {"port": 99999}, "poller": {"intervalSeconds": 0}}"#.write(
            toFile: path,
            atomically: true,
            encoding: .utf8
        )
        let bad = await Executable.run(billingd, ["--check-config", "--config", path])
        #expect(bad.status == 78)
        #expect(bad.stderr.contains("listen.port 99999 is not a port"))
        #expect(bad.stderr.contains("poller.intervalSeconds"))
    }

    @Test func sigtermStopsItGracefully() async throws {
        let daemon = try await Daemon()
        defer { daemon.removeData() }
        try await daemon.waitFor("billingd listening")
        daemon.process.terminate()
        let log = await daemon.exited()
        #expect(await daemon.process.wait() == .exited(0), "\(log)")
        #expect(log.contains("billingd listening"))
        #expect(log.contains("billingd stopped"))
        #expect(!log.contains("PRIVATE KEY"))
    }

    @Test func everyFileItWritesIsReadableByItsOwnerOnly() async throws {
        // A data folder that already exists, open to everyone, and a lax umask.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "billingd-perm-\(UUID().uuidString)"
        ).path
        try FileManager.default.createDirectory(
            atPath: directory,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o755]
        )
        let daemon = try await Daemon(directory: directory)
        defer { daemon.removeData() }
        try await daemon.waitFor("billingd listening")
        // A write, so the -wal and -shm files exist.
        #expect(try await daemon.billing(["accounts", "create", "acc-perm", "--name", "P"]).status == 0)
        var checked: [String] = []
        for file in [
            "billing.sqlite", "billing.sqlite-wal", "billing.sqlite-shm", "sandbox.sqlite", "sandbox.sqlite-wal",
            "tls/ca-key.pem",
            "tls/server-key.pem",
        ] {
            let path = directory + "/" + file
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let mode = try #require(
                try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber
            ).intValue
            #expect(mode & 0o077 == 0, "\(file) has mode \(String(mode, radix: 8))")
            checked.append(file)
        }
        #expect(checked.contains("billing.sqlite-wal") && checked.contains("sandbox.sqlite"), "\(checked)")
        daemon.process.terminate()
        _ = await daemon.exited()
    }

    @Test func checkConfigWarnsOfASecretOthersCanRead() async throws {
        let billingd = try #require(Executable.path("billingd"))
        let secret = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: secret) }
        try "sk_test_x\n".write(toFile: secret, atomically: true, encoding: .utf8)
        chmod(secret, 0o644)
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("perm-\(UUID().uuidString).json")
            .path
        defer { try? FileManager.default.removeItem(atPath: config) }
        try #"{"stripe": {"enabled": true, "secretKeyFile": "\#(secret)"}}"#.write(
            toFile: config,
            atomically: true,
            encoding: .utf8
        )
        let result = await Executable.run(billingd, ["--check-config", "--config", config])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(
            result.stdout.contains("warning: the Stripe secret key file \(secret) is readable by others"),
            "\(result.stdout)"
        )
    }

    @Test func aStartThatFailsEndsTheProcessInsteadOfHangingIt() async throws {
        let first = try await Daemon()
        defer { first.removeData() }
        try await first.waitFor("billingd listening")
        let line = first.text.split(separator: "\n").first { $0.contains("sandbox payment page listening") } ?? ""
        let taken = try #require(line.firstMatch(of: /url=http:\/\/127\.0\.0\.1:(\d+)/).flatMap { Int($0.1) })
        // A second billingd whose sandbox page wants the port the first one holds.
        let second = try await Daemon(environment: ["BILLINGD_SANDBOX_PORT": "\(taken)"])
        defer { second.removeData() }
        // A guard against hanging forever only (the start fails at once): a
        // billingd still there after 120 s is killed, and the test fails.
        let watchdog = Task {
            try? await Task.sleep(for: .seconds(120))
            second.process.send(SIGKILL)
        }
        let ended = await second.process.wait()
        watchdog.cancel()
        #expect(ended == .exited(1), "billingd hung or ended otherwise after a failed start: \(second.text)")
        #expect(second.text.contains("billingd could not start"), "\(second.text)")
        #expect(!second.text.contains("poller started"), "the poller never runs when the start fails")
        first.process.terminate()
        _ = await first.exited()
    }

    @Test func anOnlineBackupTakenUnderWritesIsWholeAndRestores() async throws {
        let billingd = try #require(Executable.path("billingd"))
        let daemon = try await Daemon()
        defer { daemon.removeData() }
        try await daemon.waitFor("billingd listening")
        #expect(try await daemon.billing(["accounts", "create", "acc-bk", "--name", "Backup"]).status == 0)
        #expect(try await daemon.billing(["accounts", "add-payer", "acc-bk", "--name", "Payer"]).status == 0)
        // Invoices made and settled (ledger credits, events) while the backup is taken.
        let settled = Mutex(0)
        let writer = Task {
            for index in 0..<12 {
                let made = try await daemon.billing([
                    "topup", "--account", "acc-bk", "--amount", "1\(index)", "--invoice", "--json",
                ])
                let object = try JSONSerialization.jsonObject(with: Data(made.stdout.utf8)) as? [String: Any]
                let id = try #require(
                    (object?["payment"] as? [String: Any])?["id"] as? String,
                    "\(made.stdout) \(made.stderr)"
                )
                #expect(try await daemon.billing(["invoice", "settle", id, "--as", "operator"]).status == 0)
                settled.withLock { $0 += 1 }
            }
        }
        while settled.withLock({ $0 }) < 2 { try await Task.sleep(for: .milliseconds(20)) }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("backup-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let copy = folder + "/billing.sqlite"
        let backup = await Executable.run(billingd, ["--data-dir", daemon.directory, "--backup-to", copy])
        #expect(backup.status == 0, "\(backup.stdout) \(backup.stderr)")
        #expect(backup.stdout.contains("checked"), "\(backup.stdout)")
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: copy)[.posixPermissions] as? NSNumber)
            .intValue
        #expect(mode & 0o077 == 0, "the copy is its owner's only: \(String(mode, radix: 8))")
        let again = await Executable.run(billingd, ["--data-dir", daemon.directory, "--backup-to", copy])
        #expect(again.status == 1 && again.stderr.contains("never overwrites"), "\(again.stderr)")
        try await writer.value
        daemon.process.terminate()
        _ = await daemon.exited()

        // Restored into a new data folder: billingd serves it, and the books hold.
        let restored = try await Daemon(directory: folder)
        try await restored.waitFor("billingd listening")
        let doctor = try await restored.billing(["doctor", "--storage", "--as", "operator"])
        #expect(doctor.status == 0, "\(doctor.stdout) \(doctor.stderr)")
        let listed = try await restored.billing(["payments", "--account", "acc-bk", "--json"])
        #expect(listed.status == 0 && listed.stdout.contains("pay_"), "\(listed.stdout) \(listed.stderr)")
        // It goes on from where the copy ended: a new write is accepted and checked.
        #expect(try await restored.billing(["topup", "--account", "acc-bk", "--amount", "5", "--invoice"]).status == 0)
        #expect(try await restored.billing(["doctor", "--storage", "--as", "operator"]).status == 0)
        restored.process.terminate()
        _ = await restored.exited()
    }

    @Test func sighupReloadsRotatedCertificatesAndKeepsTheCurrentOnesWhenTheNewAreBad() async throws {
        let billing = try #require(Executable.path("billing"))
        let daemon = try await Daemon()
        defer { daemon.removeData() }
        try await daemon.waitFor("billingd listening")
        #expect(try await daemon.billing(["accounts", "create", "acc-tls", "--name", "TLS"]).status == 0)
        // Rotate: keep the old set aside, remove it; the reload makes a new CA and certificates.
        let tls = daemon.directory + "/tls"
        let old = FileManager.default.temporaryDirectory.appendingPathComponent("old-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: old, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: old) }
        try FileManager.default.copyItem(atPath: tls, toPath: old + "/tls")
        try FileManager.default.removeItem(atPath: tls)
        daemon.process.send(SIGHUP)
        try await daemon.waitFor("TLS certificates reloaded")
        // New connections use the new set; a client that trusts only the old CA is refused.
        #expect(try await daemon.billing(["balance", "--account", "acc-tls"]).status == 0)
        let stale = await Executable.run(
            billing,
            ["balance", "--account", "acc-tls", "--address", "127.0.0.1:\(try daemon.port())"],
            environment: ["BILLINGD_DATA_DIR": old]
        )
        #expect(stale.status != 0, "the old CA still verified the server: \(stale.stdout)")
        // A key that cannot be read: the reload fails, and the current set stays in use.
        try "not a key\n".write(toFile: tls + "/server-key.pem", atomically: true, encoding: .utf8)
        daemon.process.send(SIGHUP)
        try await daemon.waitFor("TLS reload failed")
        #expect(try await daemon.billing(["balance", "--account", "acc-tls"]).status == 0)
        #expect(daemon.process.isRunning)
        daemon.process.terminate()
        #expect(await daemon.process.wait() == .exited(0))
    }

    @Test func jsonLogsCoverAConfigurationRefusedAtStartToo() async throws {
        let billingd = try #require(Executable.path("billingd"))
        let refused = await Executable.run(
            billingd,
            [],
            environment: ["BILLINGD_LOG_FORMAT": "json", "BILLINGD_LISTEN": "nope"]
        )
        #expect(refused.status == 78)
        let lines = refused.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(refused.stderr)")
        for line in lines {
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                "not a JSON object: \(line)"
            )
            #expect((object["message"] as? String)?.contains("BILLINGD_LISTEN must be host:port") == true, "\(line)")
        }
    }

    @Test func jsonLogsAreOneObjectPerLineFromStartToStop() async throws {
        let daemon = try await Daemon(environment: ["BILLINGD_LOG_FORMAT": "json"])
        defer { daemon.removeData() }
        try await daemon.waitFor("\"message\":\"billingd listening\"")
        daemon.process.terminate()
        let log = await daemon.exited()
        var messages: [String] = []
        for line in log.split(separator: "\n") {
            let object = try #require(
                try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                "not a JSON object: \(line)"
            )
            #expect(object["timestamp"] as? String != nil && object["level"] as? String != nil, "\(line)")
            #expect(object["metadata"] as? [String: Any] != nil, "\(line)")
            let message = try #require(object["message"] as? String)
            messages.append(message)
            if message == "billingd listening" {
                let address = (object["metadata"] as? [String: Any])?["address"] as? String
                #expect(address?.hasPrefix("127.0.0.1:") == true, "\(line)")
            }
        }
        #expect(messages.contains("billingd listening") && messages.contains("billingd shutting down"), "\(messages)")
        #expect(messages.last == "billingd stopped", "\(messages)")
        #expect(await daemon.process.wait() == .exited(0))
    }

    @Test func aDamagedDatabaseIsRefusedAtStart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "billingd-damaged-\(UUID().uuidString)"
        ).path
        let first = try await Daemon(directory: directory)
        defer { first.removeData() }
        try await first.waitFor("billingd listening")
        for index in 0..<30 {
            _ = try await first.billing([
                "accounts", "create", "acc-\(index)", "--name", String(repeating: "n", count: 150),
            ])
        }
        first.process.terminate()
        _ = await first.exited()
        // Random bytes over one page in the middle of the file.
        let handle = try #require(FileHandle(forUpdatingAtPath: directory + "/billing.sqlite"))
        let size = try handle.seekToEnd()
        #expect(size > 3 * 4096)
        try handle.seek(toOffset: (size / 4096 / 2) * 4096)
        var generator = SplitMix64(seed: 42)
        try handle.write(contentsOf: Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }))
        try handle.close()
        let second = try await Daemon(directory: directory)
        let log = await second.exited()
        #expect(await second.process.wait() != .exited(0), "billingd served a damaged database")
        #expect(log.contains("damaged") || log.contains("malformed"), "\(log)")
        #expect(!log.contains("billingd listening"))
    }
}

/// billingd as a child process on its embedded default in a temporary
/// folder, on free ports (or another of the package's executables, such as
/// billing-panel); its log (stderr) read as it comes.
final class Daemon: Sendable {
    let process: ChildProcess
    let directory: String
    private let log = Mutex<String>("")
    private let done = DispatchSemaphore(value: 0)

    init(
        directory: String = FileManager.default.temporaryDirectory.appendingPathComponent(
            "billingd-proc-\(UUID().uuidString)"
        ).path,
        environment extra: [String: String] = [:],
        executable: String = "billingd",
        arguments: [String]? = nil
    ) async throws {
        self.directory = directory
        let err = try DescriptorPipe()
        process = try await ChildProcess(
            try #require(Executable.path(executable), "build \(executable) first (swift build)"),
            arguments ?? ["--data-dir", directory],
            environment: ["BILLINGD_LISTEN": "127.0.0.1:0", "BILLINGD_SANDBOX_PORT": "0", "PATH": "/usr/bin:/bin"]
                .merging(extra) { _, given in given },
            standardError: err.writing.fileDescriptor
        )
        try err.writing.close()
        err.drain({ [self] bytes in log.withLock { $0 += String(decoding: bytes, as: UTF8.self) } }, done: done)
    }

    var text: String { log.withLock { $0 } }

    /// Waits (bounded, generously) until the log holds `line`.
    func waitFor(_ line: String) async throws {
        let deadline = ContinuousClock.now.advanced(by: .seconds(120))
        while !text.contains(line) {
            guard ContinuousClock.now < deadline, process.isRunning else {
                throw TestFailure("billingd did not log \"\(line)\": \(text)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The RPC port from the "billingd listening" line.
    func port() throws -> Int {
        let line = text.split(separator: "\n").first { $0.contains("billingd listening") } ?? ""
        guard let match = line.firstMatch(of: /address=127\.0\.0\.1:(\d+)/), let port = Int(match.1) else {
            throw TestFailure("no port in \(text)")
        }
        return port
    }

    /// `billing` against this billingd, with its development certificates.
    func billing(_ arguments: [String]) async throws -> Executable.Result {
        await Executable.run(
            try #require(Executable.path("billing")),
            arguments + ["--address", "127.0.0.1:\(try port())"],
            environment: ["BILLINGD_DATA_DIR": directory]
        )
    }

    /// Waits for the process to end and its log to close; its whole log.
    func exited() async -> String {
        _ = await process.wait()
        await withCheckedContinuation { continuation in
            onOwnThread { [self] in
                done.wait()
                continuation.resume()
            }
        }
        return text
    }

    func removeData() {
        process.terminate()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
