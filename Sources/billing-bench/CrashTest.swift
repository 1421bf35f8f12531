import BillingAPI
import BillingMessages
import BillingRPC
import BillingStorage
import BillingTLS
import BillingTestSupport
import BillingTransport
import Foundation
import GRDB
import NIOCore
import NIOPosix
import Synchronization

/// The whole-process crash test: billingd (the real executable, on its
/// embedded default) as a child, a mixed load from this process, SIGKILL at
/// random moments, a restart on the same data each time; then the books are
/// checked with SQL against what the sandbox and the watchers saw.
///
/// Load: top-ups by invoice (settled or cancelled by an operator), through
/// the sandbox page (approved, declined, abandoned, cancelled by the payer,
/// some saving the card), with saved cards; renewals and migration payments
/// from the balance and through the sandbox; one watcher per account that
/// resumes after every restart from the last sequence it saw.
///
/// Checks after the last restart, once the poller has settled what the
/// sandbox decided: balance = ledger sum per account; one credit per Paid
/// payment, of its amount; no credit for a payment not Paid; event sequences
/// gap-free (global and per account); every sandbox payment it approved is
/// Paid and every Paid sandbox payment was approved; every event a watcher
/// saw is in the log, and each watcher saw its account's events 1, 2, … with
/// no gap and no repeat. Prints the figures and exits 1 on any violation.
enum CrashTest {
    static let accounts = ["acc-crash-1", "acc-crash-2", "acc-crash-3", "acc-crash-4"]

    static func run(kills: Int, seed: UInt64) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "billing-crash-\(UUID().uuidString)"
        ).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // A short lease and a fast poller: a killed instance's claims lapse soon.
        let config = directory + "/billingd.json"
        try
            #"{"poller": {"intervalSeconds": 0.2, "leaseSeconds": 2, "maxBackoffSeconds": 2}, "limits": {"shutdownGraceSeconds": 2}}"#
            .write(toFile: config, atomically: true, encoding: .utf8)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var random = SplitMix64(seed: seed)
        report("crash test: \(kills) kills, seed \(seed), data in \(directory)")
        let record = Record()
        var daemon = try await Child.start(directory: directory, config: config)
        var payers: [String: String] = [:]
        do {
            let clients = try daemon.clients(group: group)
            for account in accounts {
                payers[account] = try await provision(account, clients)
            }
        }
        var started = ContinuousClock.now
        for kill in 0...kills {
            let clients = try daemon.clients(group: group)
            let (seed, current, known) = (random.next(), daemon, payers)
            let load = Task {
                await Self.load(
                    clients: clients,
                    payers: known,
                    daemon: current,
                    record: record,
                    group: group,
                    seed: seed
                )
            }
            let watchers = accounts.map { account in
                Task { await Self.watch(account, clients: clients, record: record) }
            }
            if kill < kills {
                try await Task.sleep(for: .milliseconds(Int.random(in: 300...2500, using: &random)))
                await daemon.kill()
            } else {
                try await Task.sleep(for: .seconds(3))
            }
            load.cancel()
            await load.value
            for watcher in watchers { watcher.cancel() }
            for watcher in watchers { await watcher.value }
            await clients.close()
            if kill < kills {
                daemon = try await Child.start(directory: directory, config: config)
            }
        }
        // Settle: the poller finishes what the sandbox decided; the watchers catch up.
        let clients = try daemon.clients(group: group)
        let books = Books(
            store: try SQLiteStore(StorageConfiguration(path: directory + "/billing.sqlite")),
            sandboxPath: directory + "/sandbox.sqlite"
        )
        try await settle(books)
        let watchers = accounts.map { account in Task { await Self.watch(account, clients: clients, record: record) } }
        try await Task.sleep(for: .seconds(2))
        for watcher in watchers { watcher.cancel() }
        for watcher in watchers { await watcher.value }
        await clients.close()
        await daemon.stop()
        try await group.shutdownGracefully()
        let elapsed = ContinuousClock.now - started
        started = ContinuousClock.now

        let problems = try await check(books, record: record)
        let figures = try await figures(books)
        report(
            "ran \(elapsed), \(kills) SIGKILLs and restarts; \(record.operations) operations answered, \(record.failures) failed (killed mid-call)"
        )
        report(
            "payments \(figures.payments) (paid \(figures.paid), cancelled \(figures.cancelled), new \(figures.new)), ledger entries \(figures.ledger), events \(figures.events), watcher events seen \(record.seenCount)"
        )
        if problems.isEmpty {
            report("all invariants hold")
        } else {
            for problem in problems.prefix(40) { report("VIOLATION: \(problem)") }
            throw ExitFailure()
        }
    }

    struct ExitFailure: Error {}

    /// A child's log, kept whole (the cluster test reads its poller's lines).
    final class LogLines: Sendable {
        private let text = Mutex("")
        private let ended = Mutex(false)

        func append(_ more: String) { text.withLock { $0 += more } }
        /// The child closed its log (it ended): every line is here.
        func end() { ended.withLock { $0 = true } }
        var isComplete: Bool { ended.withLock { $0 } }
        var lines: [Substring] { text.withLock { $0 }.split(separator: "\n") }
    }

    // MARK: The child

    /// billingd as a child process; its ports read from its log.
    struct Child {
        let process: ChildProcess
        let port: Int
        let sandboxPort: Int
        let directory: String

        static func start(
            directory: String,
            config: String,
            logLevel: String = "info",
            keeping kept: LogLines? = nil
        ) async throws -> Child {
            let executable = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
                .appendingPathComponent("billingd")
            let log = try DescriptorPipe()
            // Info: the ports are read from the "listening" lines.
            let process = try await ChildProcess(
                executable.path,
                ["--config", config, "--data-dir", directory],
                environment: [
                    "BILLINGD_LISTEN": "127.0.0.1:0", "BILLINGD_SANDBOX_PORT": "0", "BILLINGD_LOG_LEVEL": logLevel,
                    "PATH": "/usr/bin:/bin",
                ],
                standardError: log.writing.fileDescriptor
            )
            try log.writing.close()
            let ports = await withCheckedContinuation { (continuation: CheckedContinuation<(Int, Int)?, Never>) in
                DispatchQueue.global().async {
                    var text = ""
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    var rpc: Int?
                    var sandbox: Int?
                    // "billingd listening" is the last line of a start: read up to it.
                    while rpc == nil {
                        let count = buffer.withUnsafeMutableBytes {
                            read(log.reading.fileDescriptor, $0.baseAddress, $0.count)
                        }
                        if count < 0, errno == EINTR { continue }
                        guard count > 0 else { break }
                        text += String(decoding: buffer[0..<count], as: UTF8.self)
                        for line in text.split(separator: "\n") {
                            if line.contains("billingd listening"),
                                let match = line.firstMatch(of: /address=127\.0\.0\.1:(\d+)/)
                            {
                                rpc = Int(match.1)
                            }
                            if line.contains("sandbox payment page listening"),
                                let match = line.firstMatch(of: /url=http:\/\/127\.0\.0\.1:(\d+)/)
                            {
                                sandbox = Int(match.1)
                            }
                        }
                    }
                    // Keep draining the log so billingd never blocks on a full pipe.
                    kept?.append(text)
                    DispatchQueue.global().async {
                        var buffer = [UInt8](repeating: 0, count: 65536)
                        while true {
                            let count = buffer.withUnsafeMutableBytes {
                                read(log.reading.fileDescriptor, $0.baseAddress, $0.count)
                            }
                            if count < 0, errno == EINTR { continue }
                            if count <= 0 { break }
                            kept?.append(String(decoding: buffer[0..<count], as: UTF8.self))
                        }
                        kept?.end()
                    }
                    continuation.resume(returning: rpc.flatMap { rpc in sandbox.map { (rpc, $0) } })
                }
            }
            guard let (port, sandboxPort) = ports else { throw ChildFailed() }
            return Child(process: process, port: port, sandboxPort: sandboxPort, directory: directory)
        }

        struct ChildFailed: Error {}

        func clients(group: any EventLoopGroup) throws -> Clients {
            try Clients(port: port, directory: directory, group: group)
        }

        func kill() async {
            process.send(SIGKILL)
            _ = await process.wait()
        }

        func stop() async {
            process.terminate()
            _ = await process.wait()
        }
    }

    struct Clients {
        let transports: [TTRPCClient]
        let internalBalance: BillingV1.BalanceClient
        let operatorBalance: BillingV1.BalanceClient
        let accounts: BillingV1.AccountsClient
        let methods: BillingV1.PaymentMethodsClient
        let renewal: BillingV1.RenewalClient
        let migration: BillingV1.MigrationPaymentClient

        init(port: Int, directory: String, group: any EventLoopGroup) throws {
            func transport(_ name: String) throws -> TTRPCClient {
                let tls = try developmentClientTLS(directory, role: name)
                return TTRPCClient(host: "127.0.0.1", port: port, tls: tls, group: group)
            }
            let internalTransport = try transport("internal"), operatorTransport = try transport("operator")
            transports = [internalTransport, operatorTransport]
            internalBalance = .init(transport: internalTransport)
            operatorBalance = .init(transport: operatorTransport)
            accounts = .init(transport: internalTransport)
            methods = .init(transport: internalTransport)
            renewal = .init(transport: internalTransport)
            migration = .init(transport: internalTransport)
        }

        func close() async {
            for transport in transports { await transport.close() }
        }
    }

    // MARK: Load

    static func provision(_ account: String, _ clients: Clients) async throws -> String {
        var create = BillingV1.CreateAccountRequest()
        create.accountId = account
        create.displayName = account
        _ = try await clients.accounts.createAccount(create)
        var payer = BillingV1.CreatePayerRequest()
        payer.accountId = account
        payer.displayName = "Payer"
        payer.email = "payer@example.com"
        let id = try await clients.accounts.createPayer(payer).id
        for index in 0..<3 {
            var service = BillingV1.RenewableService()
            service.id = "\(account)-svc-\(index)"
            service.accountId = account
            service.displayName = "Service \(index)"
            service.pricePerPeriod = money(Int64(5_00 + index * 3_00))
            service.periodDays = 30
            service.expiresAtUnixMs = 2_000_000_000_000
            var upsert = BillingV1.UpsertRenewableServiceRequest()
            upsert.service = service
            _ = try await clients.renewal.upsertRenewableService(upsert)
        }
        return id
    }

    static func money(_ minor: Int64) -> BillingV1.Money {
        var money = BillingV1.Money()
        money.amountMinorUnits = minor
        money.currency = "USD"
        return money
    }

    static func sandbox(save: Bool) -> BillingV1.PaymentOption {
        var option = BillingV1.PaymentOption()
        var chosen = BillingV1.PaymentSystemOption()
        chosen.system = .sandbox
        chosen.saveMethod = save
        chosen.returnUrl = "https://panel.example/payments"
        option.option = .paymentSystem(chosen)
        return option
    }

    static var invoice: BillingV1.PaymentOption {
        var option = BillingV1.PaymentOption()
        option.option = .invoice(BillingV1.InvoiceOption())
        return option
    }

    static var balance: BillingV1.PaymentOption {
        var option = BillingV1.PaymentOption()
        option.option = .balance(BillingV1.BalanceOption())
        return option
    }

    /// Four workers doing random operations until cancelled; every answer or
    /// failure is counted, nothing is asserted here (a kill may cut any call).
    static func load(
        clients: Clients,
        payers: [String: String],
        daemon: Child,
        record: Record,
        group: any EventLoopGroup,
        seed: UInt64
    ) async {
        await withTaskGroup(of: Void.self) { workers in
            for worker in 0..<4 {
                workers.addTask {
                    var random = SplitMix64(seed: seed &+ UInt64(worker) &* 0x9E37_79B9)
                    while !Task.isCancelled {
                        let account = accounts[Int.random(in: 0..<accounts.count, using: &random)]
                        do {
                            try await operation(
                                Int.random(in: 0..<100, using: &random),
                                account: account,
                                payer: payers[account]!,
                                clients: clients,
                                daemon: daemon,
                                group: group,
                                random: &random
                            )
                            record.answered()
                        } catch {
                            record.failed()
                            if Task.isCancelled { return }
                            try? await Task.sleep(for: .milliseconds(20))
                        }
                    }
                }
            }
        }
    }

    static func operation(
        _ roll: Int,
        account: String,
        payer: String,
        clients: Clients,
        daemon: Child,
        group: any EventLoopGroup,
        random: inout SplitMix64
    ) async throws {
        func topUp(_ minor: Int64, _ option: BillingV1.PaymentOption) -> BillingV1.CreateTopUpRequest {
            var request = BillingV1.CreateTopUpRequest()
            request.accountId = account
            request.payerId = payer
            request.amount = money(minor)
            request.option = option
            return request
        }
        let amount = Int64.random(in: 50...50_000, using: &random)
        switch roll {
        case 0..<20:  // invoice, then settled or cancelled by an operator
            let payment = try await clients.internalBalance.createTopUp(topUp(amount, invoice)).payment!
            if Bool.random(using: &random) {
                var settle = BillingV1.SettleInvoiceRequest()
                settle.paymentId = payment.id
                _ = try await clients.operatorBalance.settleInvoice(settle)
            } else {
                var cancel = BillingV1.CancelInvoiceRequest()
                cancel.paymentId = payment.id
                _ = try await clients.operatorBalance.cancelInvoice(cancel)
            }
        case 20..<50:  // the sandbox page: approved, declined, abandoned or cancelled
            let created = try await clients.internalBalance.createTopUp(topUp(amount, sandbox(save: roll % 3 == 0)))
            try await decide(
                created.redirectUrl,
                paymentID: created.payment?.id ?? "",
                clients: clients,
                daemon: daemon,
                group: group,
                random: &random
            )
        case 50..<65:  // a saved card, if the payer has one
            var list = BillingV1.ListPaymentMethodsRequest()
            list.payerId = payer
            guard
                let method = try await clients.methods.listPaymentMethods(list).methods.first(where: {
                    $0.status == .confirmed
                })
            else { return }
            var option = BillingV1.PaymentOption()
            var saved = BillingV1.SavedMethodOption()
            saved.paymentMethodId = method.id
            option.option = .savedMethod(saved)
            _ = try await clients.internalBalance.createTopUp(topUp(amount, option))
        case 65..<82:  // a renewal, from the balance or through the sandbox
            var item = BillingV1.RenewalItem()
            item.serviceId = "\(account)-svc-\(Int.random(in: 0..<3, using: &random))"
            item.periods = UInt32.random(in: 1...3, using: &random)
            var renew = BillingV1.RenewRequest()
            renew.accountId = account
            renew.items = [item]
            if Bool.random(using: &random) {
                renew.option = balance
                _ = try? await clients.renewal.renew(renew)  // insufficient funds is an answer too
            } else {
                renew.payerId = payer
                renew.option = sandbox(save: false)
                let answer = try await clients.renewal.renew(renew)
                try await decide(
                    answer.redirectUrl,
                    paymentID: answer.payment?.id ?? "",
                    clients: clients,
                    daemon: daemon,
                    group: group,
                    random: &random
                )
            }
        default:  // a migration's server, from the balance or through the sandbox
            var order = BillingV1.CreateMigrationOrderRequest()
            order.accountId = account
            order.externalId = "m-\(UInt32.random(in: 0...UInt32.max, using: &random))"
            order.serverPrice = money(Int64.random(in: 1_00...20_00, using: &random))
            let created = try await clients.migration.createMigrationOrder(order)
            var pay = BillingV1.PayMigrationOrderRequest()
            pay.orderId = created.id
            if Bool.random(using: &random) {
                pay.option = balance
                _ = try? await clients.migration.payMigrationOrder(pay)
            } else {
                pay.payerId = payer
                pay.option = sandbox(save: false)
                let answer = try await clients.migration.payMigrationOrder(pay)
                try await decide(
                    answer.redirectUrl,
                    paymentID: answer.payment?.id ?? "",
                    clients: clients,
                    daemon: daemon,
                    group: group,
                    random: &random
                )
            }
        }
    }

    /// What a person does on the sandbox page: Pay, Decline, nothing, or
    /// cancel the payment in billingd instead.
    static func decide(
        _ redirectURL: String,
        paymentID: String,
        clients: Clients,
        daemon: Child,
        group: any EventLoopGroup,
        random: inout SplitMix64
    ) async throws {
        guard let id = redirectURL.split(separator: "/").last, redirectURL.contains("/pay/") else { return }
        switch Int.random(in: 0..<10, using: &random) {
        case 0..<5: try await press(String(id), approve: true, port: daemon.sandboxPort, group: group)
        case 5..<7: try await press(String(id), approve: false, port: daemon.sandboxPort, group: group)
        case 7..<9:
            var cancel = BillingV1.CancelPaymentRequest()
            cancel.paymentId = paymentID
            _ = try? await clients.internalBalance.cancelPayment(cancel)
        default: break  // abandoned: it stays open until the sandbox's time to live
        }
    }

    /// POST /pay/<id>/approve|decline on the sandbox page (loopback, one request).
    static func press(_ id: String, approve: Bool, port: Int, group: any EventLoopGroup) async throws {
        let channel = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get()
        let request =
            "POST /pay/\(id)/\(approve ? "approve" : "decline") HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        try await channel.writeAndFlush(ByteBuffer(string: request)).get()
        try await channel.closeFuture.get()
    }

    // MARK: Watchers

    /// Follows one account from the last sequence seen until cancelled or cut.
    static func watch(_ account: String, clients: Clients, record: Record) async {
        var request = BillingV1.WatchPaymentsRequest()
        request.accountId = account
        request.afterSequence = record.lastSeen(account)
        do {
            for try await event in try await clients.internalBalance.watchPayments(request) {
                record.saw(account, event)
            }
        } catch {}
    }

    // MARK: Settling and checks

    /// Where the books are read after a run: billingd's SQLite file, or the
    /// PostgreSQL database of a cluster run; the sandbox's file either way.
    struct Books: Sendable {
        let store: any SQLStore
        let sandboxPath: String

        /// Each sandbox payment's status at the sandbox (open, approved, declined, …).
        func sandboxStatuses() throws -> [String: String] {
            var configuration = Configuration()
            configuration.readonly = true
            configuration.busyMode = .timeout(10)
            let queue = try DatabaseQueue(path: sandboxPath, configuration: configuration)
            defer { try? queue.close() }
            return try queue.read { db in
                var statuses: [String: String] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT payment_id, status FROM payments") {
                    statuses[row["payment_id"]] = row["status"]
                }
                return statuses
            }
        }

        func read<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
            try await store.read(body)
        }
    }

    /// Waits until no payment is New whose sandbox payment is decided (the
    /// poller's work), bounded.
    static func settle(_ books: Books) async throws {
        let deadline = ContinuousClock.now.advanced(by: .seconds(180))
        while ContinuousClock.now < deadline {
            let sandbox = try books.sandboxStatuses()
            let open = try await books.read { db in
                try db.values(String.self, "SELECT id FROM payments WHERE status = 'new' AND system = 'sandbox'")
            }
            if open.allSatisfy({ sandbox[$0] == nil || sandbox[$0] == "open" }) { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        report("warning: payments decided at the sandbox still New after 180 s")
    }

    static func check(_ books: Books, record: Record) async throws -> [String] {
        let sandbox = try books.sandboxStatuses()
        let seen = record.seenEvents()
        var problems = try await books.store.checkStorage().problems
        problems += try await books.read { db -> [String] in
            var problems: [String] = []
            func rows(_ sql: String, _ describe: (SQLRow) throws -> String) throws {
                problems += try db.rows(sql).map(describe)
            }
            try rows(
                """
                SELECT p.id FROM payments p WHERE p.status = 'paid' AND
                  (SELECT COUNT(*) FROM ledger l WHERE l.entry_key = 'credit:' || p.id AND l.amount_minor = p.amount_minor) != 1
                """
            ) { "Paid payment \(try $0.get("id") as String) has not exactly one credit of its amount" }
            try rows(
                """
                SELECT l.entry_key FROM ledger l JOIN payments p ON l.entry_key = 'credit:' || p.id WHERE p.status != 'paid'
                """
            ) { "credit \(try $0.get("entry_key") as String) for a payment that is not Paid" }
            for row in try db.rows("SELECT id, status FROM payments WHERE system = 'sandbox'") {
                let id: String = try row.get("id")
                let status: String = try row.get("status")
                if sandbox[id] == "approved" && status != "paid" {
                    problems.append("sandbox approved \(id) but it is \(status)")
                }
                if status == "paid" && sandbox[id] != "approved" {
                    problems.append("\(id) is Paid but the sandbox says \(sandbox[id] ?? "nothing")")
                }
            }
            // Every event a watcher saw is the log's, and each saw 1, 2, … of its account.
            for (account, seen) in seen {
                let expected = Array(1...UInt64(max(1, seen.count)))
                if !seen.isEmpty && seen.map(\.sequence) != expected {
                    problems.append("watcher of \(account) saw sequences with a gap or a repeat (\(seen.count) events)")
                }
                var kinds: [UInt64: String] = [:]
                for row in try db.rows("SELECT account_sequence, kind FROM events WHERE account_id = ?", [account]) {
                    kinds[UInt64(try row.get("account_sequence") as Int64)] = try row.get("kind")
                }
                for event in seen where kinds[event.sequence] != event.kind {
                    problems.append(
                        "watcher of \(account) saw \(event.sequence) \(event.kind), the log has \(kinds[event.sequence] ?? "nothing")"
                    )
                }
            }
            return problems
        }
        return problems
    }

    static func figures(
        _ books: Books
    ) async throws -> (payments: Int, paid: Int, cancelled: Int, new: Int, ledger: Int, events: Int) {
        try await books.read { db in
            func count(_ sql: String) throws -> Int { try db.value(Int.self, sql) ?? 0 }
            return (
                try count("SELECT COUNT(*) FROM payments"),
                try count("SELECT COUNT(*) FROM payments WHERE status = 'paid'"),
                try count("SELECT COUNT(*) FROM payments WHERE status = 'cancelled'"),
                try count("SELECT COUNT(*) FROM payments WHERE status = 'new'"),
                try count("SELECT COUNT(*) FROM ledger"), try count("SELECT COUNT(*) FROM events")
            )
        }
    }

    /// What the load and the watchers saw, shared by their tasks.
    final class Record: Sendable {
        struct Seen: Sendable {
            let sequence: UInt64
            let kind: String
        }

        private let state = Mutex<(answered: Int, failed: Int, seen: [String: [Seen]])>((0, 0, [:]))

        func answered() { state.withLock { $0.answered += 1 } }
        func failed() { state.withLock { $0.failed += 1 } }
        var operations: Int { state.withLock { $0.answered } }
        var failures: Int { state.withLock { $0.failed } }
        var seenCount: Int { state.withLock { $0.seen.values.reduce(0) { $0 + $1.count } } }

        func saw(_ account: String, _ event: BillingV1.PaymentEvent) {
            let kind: String
            switch event.event {
            case .paymentStatusChanged?: kind = "payment_status_changed"
            case .methodStatusChanged?: kind = "method_status_changed"
            case .balanceChanged?: kind = "balance_changed"
            case .notification?: kind = "notification"
            default: kind = "unknown"
            }
            state.withLock { $0.seen[account, default: []].append(Seen(sequence: event.sequence, kind: kind)) }
        }

        func lastSeen(_ account: String) -> UInt64 {
            state.withLock { $0.seen[account]?.last?.sequence ?? 0 }
        }

        func seenEvents() -> [String: [Seen]] {
            state.withLock { $0.seen }
        }
    }
}
