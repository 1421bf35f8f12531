import BillingAPI
import BillingMessages
import BillingRPC
import BillingTestSupport
import Foundation
import Synchronization
import Testing

/// `billing` run as a child with its stdout a pipe, read as it comes: what a
/// `billing watch > file` or `| cat` sees.
final class LiveCommand: Sendable {
    let process: ChildProcess
    private let output = Mutex<String>("")
    private let done = DispatchSemaphore(value: 0)

    init(_ f: ServerFixture, _ arguments: [String], environment: [String: String] = [:]) async throws {
        var env = ProcessInfo.processInfo.environment
        env["BILLINGD_DATA_DIR"] = f.directory
        for (key, value) in environment { env[key] = value }
        let out = try DescriptorPipe()
        process = try await ChildProcess(
            try #require(Executable.path("billing")),
            arguments + ["--address", "127.0.0.1:\(f.application.port)"],
            environment: env,
            standardOutput: out.writing.fileDescriptor
        )
        try out.writing.close()
        out.drain({ [self] bytes in output.withLock { $0 += String(decoding: bytes, as: UTF8.self) } }, done: done)
    }

    var text: String { output.withLock { $0 } }

    /// Waits (bounded, generously) until the output holds `needle`.
    func waitFor(_ needle: String) async throws -> Bool {
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        while !text.contains(needle) {
            guard ContinuousClock.now < deadline else { return false }
            try await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    func stop(_ signal: Int32 = SIGTERM) async -> String {
        process.send(signal)
        _ = await process.wait()
        await withCheckedContinuation { continuation in
            onOwnThread { [self] in
                done.wait()
                continuation.resume()
            }
        }
        return text
    }
}

/// The CLI as a panel operator uses it: live output in pipes, honest exit
/// codes, and the views of the top-up page, notifications and orders.
@Suite struct CommandLineViewsTests {
    @Test func watchWritesEachEventIntoAPipeAsItArrivesAndLosesNothingOnSIGTERM() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-pipe")
        let watch = try await LiveCommand(f, ["watch", "--account", account.id, "--json"])
        let payment = try await f.clients("internal").balance.createTopUp(
            topUpRequest(
                account: account.id,
                payer: payer.id,
                minor: 10_00,
                option: .invoice
            )
        ).payment!
        // Seen while the watcher still runs: not held in a buffer until exit.
        #expect(try await watch.waitFor(payment.id), "the event reached the pipe: \(watch.text)")
        #expect(watch.process.isRunning)
        let all = await watch.stop(SIGTERM)
        #expect(all.contains("\"payment_id\":\"\(payment.id)\""), "\(all)")
        await f.stop()
    }

    @Test func aTopUpLinkIsPrintedBeforeTheWaitEnds() async throws {
        let f = try await ServerFixture()
        let (account, _) = try await f.account("acc-link")
        let topup = try await LiveCommand(
            f,
            ["topup", "--account", account.id, "--amount", "10", "--system", "sandbox", "--wait"]
        )
        #expect(
            try await topup.waitFor("pay here: http://127.0.0.1:"),
            "the link comes before the payment ends: \(topup.text)"
        )
        _ = await topup.stop(SIGINT)
        await f.stop()
    }

    @Test func aDeclinedSavedMethodTopUpExits3WithItsReasonWithOrWithoutWait() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-declined")
        _ = try await MoneySafetyTests.savedCard(f, account: account.id, payer: payer.id)
        f.application.sandbox!.behaviour.declineSavedMethodCharges = true
        for extra in [[], ["--wait"], ["--json"]] {
            let result = try await f.billing(["topup", "--account", account.id, "--amount", "12"] + extra)
            #expect(result.status == 3, "\(extra): \(result.stdout) \(result.stderr)")
            #expect(result.stderr.contains("card declined"), "\(extra): \(result.stderr)")
        }
        await f.stop()
    }

    @Test func doctorRefusesTheRolesBillingdRefuses() async throws {
        let f = try await ServerFixture()
        let name = try f.certificate("superuser", uris: ["billing://superuser/x"])
        let tls = f.tls
        let result = await Executable.run(
            try #require(Executable.path("billing")),
            [
                "doctor", "--address", "127.0.0.1:\(f.application.port)", "--cert", "\(tls)/\(name).pem",
                "--key", "\(tls)/\(name)-key.pem", "--ca", "\(tls)/ca.pem",
            ]
        )
        #expect(result.status != 0)
        #expect(result.stdout.contains("✗ role"), "\(result.stdout)")
        #expect(!result.stdout.contains("✓ role"))
        await f.stop()
    }

    @Test func paymentsTakePayerNamesSpellFiltersAsTheyPrintAndTotalThePage() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-names")
        let client = try f.clients("internal").balance
        _ = try await client.createTopUp(
            topUpRequest(account: account.id, payer: payer.id, minor: 10_00, option: .invoice)
        )
        _ = try await client.createTopUp(
            topUpRequest(account: account.id, payer: payer.id, minor: 5_50, option: .invoice)
        )
        let table = try await f.billing([
            "payments", "--account", account.id, "--payer", payer.displayName, "--purpose", "top_up",
        ])
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.contains("top_up"), "the PURPOSE column spells it as the filter: \(table.stdout)")
        #expect(table.stdout.contains("2 payments: 2 new 15.50 USD"), "\(table.stdout)")
        let csv = try await f.billing(["payments", "--account", account.id, "--csv"])
        let rows = csv.stdout.split(separator: "\n")
        #expect(rows.first == "id,created,purpose,amount,currency,status,option,invoice,reason")
        #expect(rows.count == 3)
        #expect(rows.dropFirst().allSatisfy { $0.contains(",top_up,") && $0.contains(",USD,new,invoice,INV-") })
        // Nothing to show says so.
        let none = try await f.billing(["payments", "--account", account.id, "--status", "paid"])
        #expect(none.stdout.contains("no payments match these filters"), "\(none.stdout)")
        let wrongWay = try await f.billing([
            "payments", "--account", account.id, "--since", "2026-12-01T00:00:00Z", "--until", "2026-11-01T00:00:00Z",
        ])
        #expect(wrongWay.status == 64, "--since after --until is a usage error: \(wrongWay.stderr)")
        await f.stop()
    }

    @Test func errorsAreJSONWithJSONAndUnknownCommandsAreNamed() async throws {
        let f = try await ServerFixture()
        let refused = try await f.billing(["balance", "--account", "acc-nope", "--json"])
        #expect(refused.status == 65)
        let error = try #require(try json(refused.stderr)["error"] as? [String: Any], "\(refused.stderr)")
        #expect(error["code"] as? String == "NOT_FOUND")
        #expect((error["message"] as? String)?.contains("acc-nope") == true)
        let unknown = try await f.billing(["notificashuns", "--account", "x"])
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("unknown command 'notificashuns'"), "\(unknown.stderr)")
        await f.stop()
    }

    @Test func paymentShowHasTheReferenceChecksAndNextCheck() async throws {
        let f = try await ServerFixture(pollSeconds: 600)
        let (account, payer) = try await f.account("acc-show")
        let invoice = try await f.clients("internal").balance.createTopUp(
            topUpRequest(
                account: account.id,
                payer: payer.id,
                minor: 10_00,
                option: .invoice
            )
        ).payment!
        #expect(
            try await f.billing(["invoice", "settle", invoice.id, "--reference", "bank #42"], as: "operator").status
                == 0
        )
        let shown = try await f.billing(["payment", "show", invoice.id])
        #expect(shown.stdout.contains("bank #42"), "\(shown.stdout)")
        #expect(shown.stdout.contains("checks"))
        let hosted = try await f.clients("internal").balance.createTopUp(
            topUpRequest(
                account: account.id,
                payer: payer.id,
                minor: 11_00,
                option: .system(.sandbox)
            )
        ).payment!
        let body = try json(try await f.billing(["payment", "show", hosted.id, "--json"]).stdout)
        #expect((body["provider_reference"] as? String)?.hasPrefix("sbx_") == true, "\(body)")
        #expect(body["check_attempts"] as? Int != nil)
        #expect((body["next_check_at_unix_ms"] as? Int ?? 0) > 0)
        await f.stop()
    }

    @Test func notificationsOptionsAndOrdersAreViewsOfTheirOwn() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-views")
        let client = try f.clients("internal")
        let created = try await client.balance.createTopUp(
            topUpRequest(account: account.id, payer: payer.id, minor: 20_00, option: .system(.sandbox, save: true))
        )
        _ = try await f.press(created.redirectUrl, approve: false)
        _ = try await f.waitForPayment(created.payment!.id, client: client.balance, within: .seconds(60)) {
            $0.status == .cancelled
        }
        let notifications = try await f.billing(["notifications", "--account", account.id])
        #expect(notifications.stdout.contains("Payment failed"), "\(notifications.stdout)")
        let methods = try await f.billing(["methods", "list", "--payer", payer.id, "--all"])
        #expect(
            methods.stdout.contains("Sandbox (not saved)") || !methods.stdout.contains("(pending)"),
            "\(methods.stdout)"
        )

        let options = try json(try await f.billing(["options", "--account", account.id, "--json"]).stdout)
        #expect((options["presets"] as? [[String: Any]])?.count == 4)
        #expect((options["minimum"] as? [String: Any])?["amount_minor_units"] as? Int == 50)
        #expect((options["payment_systems"] as? [[String: Any]])?.first?["system"] as? String == "sandbox")
        #expect(options["invoice_available"] as? Bool == true)

        // A migration paid through the sandbox: show names its payment.
        var order = BillingV1.CreateMigrationOrderRequest()
        order.accountId = account.id
        order.externalId = "m-view"
        order.serverPrice = .usd(7_00)
        let migration = try await client.migration.createMigrationOrder(order)
        let paying = try json(
            try await f.billing([
                "migration", "pay", migration.id, "--system", "sandbox", "--payer", payer.displayName, "--json",
            ]).stdout
        )
        let paymentID = try #require((paying["payment"] as? [String: Any])?["id"] as? String)
        let shown = try json(try await f.billing(["migration", "show", migration.id, "--json"]).stdout)
        #expect(shown["status"] as? String == "payment_pending", "as billingd spells it")
        #expect((shown["payment"] as? [String: Any])?["id"] as? String == paymentID)

        // A renewal order through the sandbox.
        var service = BillingV1.RenewableService()
        service.id = "svc-view"
        service.accountId = account.id
        service.displayName = "VPS"
        service.pricePerPeriod = .usd(3_00)
        service.periodDays = 30
        service.expiresAtUnixMs = 2_000_000_000_000
        var upsert = BillingV1.UpsertRenewableServiceRequest()
        upsert.service = service
        _ = try await client.renewal.upsertRenewableService(upsert)
        let renewed = try json(
            try await f.billing([
                "renewals", "renew", "--account", account.id, "--service", "svc-view",
                "--system", "sandbox", "--payer", payer.id, "--json",
            ]).stdout
        )
        let orderID = try #require(renewed["order_id"] as? String)
        let shownOrder = try json(try await f.billing(["renewals", "order", orderID, "--json"]).stdout)
        #expect((shownOrder["payment"] as? [String: Any])?["purpose"] as? String == "renewal")
        #expect((shownOrder["lines"] as? [[String: Any]])?.first?["service_id"] as? String == "svc-view")
        await f.stop()
    }

    @Test func renewingWithASavedMethodFindsItsPayer() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-renew-method")
        let method = try await MoneySafetyTests.savedCard(f, account: account.id, payer: payer.id)
        var service = BillingV1.RenewableService()
        service.id = "svc-by-method"
        service.accountId = account.id
        service.displayName = "VPS"
        // More than the 10.00 the saved card's top-up left: the card pays the rest.
        service.pricePerPeriod = .usd(13_00)
        service.periodDays = 30
        service.expiresAtUnixMs = 2_000_000_000_000
        var upsert = BillingV1.UpsertRenewableServiceRequest()
        upsert.service = service
        _ = try await f.clients("internal").renewal.upsertRenewableService(upsert)
        let result = try await f.billing([
            "renewals", "renew", "--account", account.id, "--service", "svc-by-method", "--method", method, "--json",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let payment = try json(result.stdout)["payment"] as? [String: Any]
        #expect(payment?["payer_id"] as? String == payer.id)
        #expect((payment?["amount"] as? [String: Any])?["amount_minor_units"] as? Int == 3_00, "\(result.stdout)")
        #expect((try json(result.stdout)["from_balance"] as? [String: Any])?["amount_minor_units"] as? Int == 10_00)
        await f.stop()
    }

    @Test func automaticRenewalIsSetShownAndTurnedOffFromTheCommandLine() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-auto")
        var service = BillingV1.RenewableService()
        service.id = "svc-auto"
        service.accountId = account.id
        service.displayName = "VPS"
        service.pricePerPeriod = .usd(5_00)
        service.periodDays = 30
        service.expiresAtUnixMs = 2_000_000_000_000
        var upsert = BillingV1.UpsertRenewableServiceRequest()
        upsert.service = service
        _ = try await f.clients("internal").renewal.upsertRenewableService(upsert)
        let on = try await f.billing([
            "renewals", "auto", "--account", account.id, "--service", "svc-auto", "--days", "7", "--payer",
            payer.displayName,
        ])
        #expect(on.status == 0, "\(on.stderr)")
        #expect(on.stdout.contains("7 days before, then \(payer.id)'s default method"), "\(on.stdout)")
        let listed = try await f.billing(["renewals", "list", "--account", account.id, "--json"])
        let shown = try #require(
            (try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])?.first
        )
        let auto = shown["auto_renewal"] as? [String: Any]
        #expect(auto?["days_before"] as? Int == 7 && auto?["payer_id"] as? String == payer.id, "\(listed.stdout)")
        // The provisioning service's update keeps the person's setting.
        service.pricePerPeriod = .usd(6_00)
        upsert.service = service
        #expect(try await f.clients("internal").renewal.upsertRenewableService(upsert).autoRenewal?.daysBefore == 7)
        // Refusals: a lead longer than the period, none at all, a stranger's service.
        let long = try await f.billing([
            "renewals", "auto", "--account", account.id, "--service", "svc-auto", "--days", "31",
        ])
        #expect(long.status == 65 && long.stderr.contains("period of at least 31 days"), "\(long.stderr)")
        #expect(
            try await f.billing(["renewals", "auto", "--account", account.id, "--service", "svc-auto"]).status == 64
        )
        let (other, _) = try await f.account("acc-auto-other")
        let stranger = try await f.billing([
            "renewals", "auto", "--account", other.id, "--service", "svc-auto", "--off",
        ])
        #expect(stranger.status == 65 && stranger.stderr.contains("not found"), "\(stranger.stderr)")
        let off = try await f.billing(["renewals", "auto", "--account", account.id, "--service", "svc-auto", "--off"])
        #expect(off.status == 0 && off.stdout.contains("automatic renewal off"), "\(off.stdout)")
        await f.stop()
    }

    @Test func aWatcherWithAResumeNameContinuesWhereItStopped() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-resume")
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("billing-state-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: state) }
        let client = try f.clients("internal").balance
        let first = try await client.createTopUp(
            topUpRequest(account: account.id, payer: payer.id, minor: 10_00, option: .invoice)
        ).payment!
        let path = try #require(Executable.path("billing"))
        // Its own state folder: nothing of the machine's ~/.local/state is read.
        let environment = ["BILLINGD_DATA_DIR": f.directory, "XDG_STATE_HOME": state]
        func watchOne() async -> String {
            await Executable.run(
                path,
                [
                    "watch", "--account", account.id, "--resume", "panel", "--count", "1", "--json",
                    "--address", "127.0.0.1:\(f.application.port)",
                ],
                environment: environment
            ).stdout
        }
        #expect(await watchOne().contains(first.id))
        let second = try await client.createTopUp(
            topUpRequest(account: account.id, payer: payer.id, minor: 11_00, option: .invoice)
        ).payment!
        // Started again with no --after: it continues after the first event.
        let third = await watchOne()
        #expect(third.contains(second.id), "\(third)")
        #expect(!third.contains(first.id))
        await f.stop()
    }
}
