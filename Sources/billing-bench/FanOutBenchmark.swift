import BillingAPI
import BillingMessages
import BillingRPC
import BillingServer
import BillingTLS
import BillingTransport
import Foundation
import Logging
import NIOPosix
import Synchronization

/// What idle watchers cost a write, and how fast one transition reaches many
/// watchers of its account, through a whole billingd in this process.
///
/// - CreateTopUp (invoice: one write transaction, no payment system) p50/p99
///   with 0, 1,000 and 10,000 idle WatchPayments streams of *other*
///   accounts; the ratio to the 0 figure of the same run is the result.
/// - One transition (an invoice settled) to N watchers of its own account:
///   the time until the last of them has the event (p50/p99 over rounds).
/// Watchers are opened 100 a connection (the client's default stream limit).
/// - Resident memory per idle watcher (billingd and the client share the
///   process, so this is an upper bound for billingd).
enum FanOutBenchmark {
    static func run(calls: Int) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "billing-fanout-bench-\(UUID().uuidString)"
        ).path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = BillingConfiguration()
        configuration.dataDirectory = directory
        configuration.listen.port = 0
        configuration.sandbox.port = 0
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let application = try await BillingApplication.start(configuration, logger: logger)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let tls = try developmentClientTLS(directory)
        func connection() -> TTRPCClient {
            TTRPCClient(host: "127.0.0.1", port: application.port, tls: tls, group: group)
        }
        let main = connection()
        let accounts = BillingV1.AccountsClient(transport: main)
        let balance = BillingV1.BalanceClient(transport: main)
        func account(_ id: String) async throws -> String {
            var create = BillingV1.CreateAccountRequest()
            create.accountId = id
            create.displayName = id
            _ = try await accounts.createAccount(create)
            var payer = BillingV1.CreatePayerRequest()
            payer.accountId = id
            payer.displayName = "Payer"
            payer.email = "p@example.com"
            return try await accounts.createPayer(payer).id
        }
        let writerPayer = try await account("acc-writer")
        _ = try await account("acc-idle")

        func topUp() -> BillingV1.CreateTopUpRequest {
            var request = BillingV1.CreateTopUpRequest()
            request.accountId = "acc-writer"
            request.payerId = writerPayer
            var money = BillingV1.Money()
            money.amountMinorUnits = 10_00
            money.currency = "USD"
            request.amount = money
            var option = BillingV1.PaymentOption()
            option.option = .invoice(BillingV1.InvoiceOption())
            request.option = option
            return request
        }
        func createTopUps() async throws -> [Int] {
            var latencies: [Int] = []
            for _ in 0..<calls {
                let start = ContinuousClock.now
                _ = try await balance.createTopUp(topUp())
                latencies.append(microseconds(ContinuousClock.now - start))
            }
            return latencies.sorted()
        }

        var connections: [TTRPCClient] = []
        var watchers: [Task<Void, Never>] = []
        func addWatchers(_ count: Int, account: String) async throws {
            for _ in 0..<count {
                if watchers.count % 100 == 0 { connections.append(connection()) }
                var request = BillingV1.WatchPaymentsRequest()
                request.accountId = account
                let stream = try await BillingV1.BalanceClient(transport: connections[connections.count - 1])
                    .watchPayments(request)
                watchers.append(Task { do { for try await _ in stream {} } catch {} })
            }
        }

        report("CreateTopUp (invoice) with idle watchers of another account, \(calls) calls each")
        report("watchers   p50 µs   p99 µs   p50 ratio to none")
        var rssBefore = residentBytes()
        var baseline = 0
        for target in calls == 0 ? [] : [0, 1_000, 10_000] {
            try await addWatchers(target - watchers.count, account: "acc-idle")
            if target == 0 { rssBefore = residentBytes() }
            let latencies = try await createTopUps()
            let p50 = latencies[latencies.count / 2]
            if target == 0 { baseline = p50 }
            report(
                String(
                    format: "%8d %8d %8d %8.2f",
                    target,
                    p50,
                    latencies[latencies.count * 99 / 100],
                    Double(p50) / Double(max(baseline, 1))
                )
            )
        }
        if calls > 0 {
            let perWatcher = (residentBytes() - rssBefore) / max(watchers.count, 1)
            report("resident memory per idle watcher (billingd and client together): \(perWatcher / 1024) KiB")
        }
        for watcher in watchers { watcher.cancel() }
        watchers.removeAll()
        for connection in connections { await connection.close() }
        connections.removeAll()

        // One transition to N watchers of its own account: each watcher
        // counts the Paid events it receives; a round settles one invoice and
        // waits until every watcher has that Paid.
        let paidSeen = Counter()
        let eventsSeen = Counter()
        let ended = Counter()
        let target = Int(ProcessInfo.processInfo.environment["FANOUT_WATCHERS"] ?? "") ?? 10_000
        let operatorTLS = try developmentClientTLS(directory, role: "operator")
        let operatorConnection = TTRPCClient(host: "127.0.0.1", port: application.port, tls: operatorTLS, group: group)
        let operatorBalance = BillingV1.BalanceClient(transport: operatorConnection)
        var latest = BillingV1.GetBalanceRequest()
        latest.accountId = "acc-writer"
        let now = try await balance.getBalance(latest).asOfSequence
        let channels = try await RawWatchers.open(
            count: target,
            perConnection: 100,
            accountID: "acc-writer",
            after: now,
            port: application.port,
            tls: tls,
            group: group,
            events: eventsSeen,
            paid: paidSeen,
            ended: ended
        )
        report("\(target) watchers of the account open")
        // Round 0 is not counted: it waits for every watcher to have caught up.
        var rounds: [Int] = []
        let roundCount = Int(ProcessInfo.processInfo.environment["FANOUT_ROUNDS"] ?? "") ?? 20
        /// Waits until `counter` reaches `value`; false after 60 s.
        func reached(_ counter: Counter, _ value: Int) async throws -> Bool {
            let patience = ContinuousClock.now.advanced(by: .seconds(60))
            while counter.value < value {
                guard ContinuousClock.now < patience else { return false }
                try await Task.sleep(for: .milliseconds(1))
            }
            return true
        }
        for round in 0...roundCount {
            // The invoice's creation is an event too: every watcher has it
            // before the clock starts, so the figure is the settlement's alone.
            var settle = BillingV1.SettleInvoiceRequest()
            settle.paymentId = try await balance.createTopUp(topUp()).payment!.id
            guard try await reached(eventsSeen, target * (2 * round + 1)) else {
                report("round \(round): the invoice's creation did not reach every watcher in 60 s")
                throw CancellationError()
            }
            let start = ContinuousClock.now
            _ = try await operatorBalance.settleInvoice(settle)
            guard try await reached(paidSeen, target * (round + 1)) else {
                report(
                    "round \(round): only \(paidSeen.value - target * round) of \(target) watchers had the event after 60 s"
                )
                throw CancellationError()
            }
            if round > 0 { rounds.append(microseconds(ContinuousClock.now - start)) }
        }
        if ended.value > 0 { report("\(ended.value) watches ended during the rounds") }
        rounds.sort()
        report(
            "one transition (invoice settled) to \(target) watchers of its account, until the last has it: p50 \(rounds[rounds.count / 2] / 1000) ms, p99 (max of \(roundCount)) \(rounds[rounds.count - 1] / 1000) ms"
        )
        await operatorConnection.close()
        await application.shutdown()
        for channel in channels { try? await channel.close() }
        await main.close()
        try await group.shutdownGracefully()
    }

    static func microseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) * 1_000_000 + Int(attoseconds / 1_000_000_000_000)
    }

    /// VmRSS of this process, in bytes.
    static func residentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kib * 1024
    }
}

/// A count shared by many tasks.
final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    func add() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}
