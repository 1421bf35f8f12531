import BillingAPI
import BillingMessages
import BillingServer
import BillingTLS
import BillingTransport
import Foundation
import GRDB
import Logging
import NIOPosix

/// The poller at scale (issue P5): COUNT New sandbox payments all due at
/// once, the sandbox answering every check in 5 ms, and the time until every
/// one of them has been checked; then the CPU billingd takes while nothing
/// is due.
///
/// 1. A whole billingd (poller interval one day, so nothing is checked yet)
///    takes COUNT hosted sandbox top-ups through RPC, 32 at a time; the rate
///    of each tenth shows whether a payment costs more as they grow.
/// 2. Stopped, its database is made to say every payment is due now (and
///    claimed by no one).
/// 3. Started again with the seed's interval (60 s), the sandbox at 5 ms a
///    check and `poller.concurrency` CONCURRENCY: the figure is the time
///    until no payment is left that was due at the start, against the 60 s
///    the seed allows (the ratio is the result: ≤ 1 meets the goal).
/// 4. Then the process's CPU time over 30 s with all of them due an hour later.
enum PollerBenchmark {
    static func run(count: Int, concurrency: Int) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "billing-poller-bench-\(UUID().uuidString)"
        ).path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = BillingConfiguration()
        configuration.dataDirectory = directory
        configuration.listen.port = 0
        configuration.sandbox.port = 0
        configuration.poller.intervalSeconds = 86_400
        configuration.sandbox.paymentTimeToLiveSeconds = 86_400
        var logger = Logger(label: "bench")
        logger.logLevel = .error

        try await create(count, configuration, logger: logger)

        // Every New payment due now.
        let dueAtMs = Int64(Date().timeIntervalSince1970 * 1000)
        let database = try DatabaseQueue(path: configuration.resolvedDatabasePath)
        try await database.write { db in
            try db.execute(
                sql: """
                    UPDATE payments SET next_check_at_ms = ?, lease_owner = NULL, lease_until_ms = NULL
                    WHERE status = 'new'
                    """,
                arguments: [dueAtMs]
            )
        }

        configuration.poller.intervalSeconds = 60
        configuration.poller.concurrency = concurrency
        configuration.sandbox.latencyMilliseconds = 5
        let start = ContinuousClock.now
        let application = try await BillingApplication.start(configuration, logger: logger)
        var left = count
        var lastReport = start
        while left > 0 {
            try await Task.sleep(for: .milliseconds(250))
            left = try await unchecked(database, dueAtMs: dueAtMs)
            if ContinuousClock.now - lastReport >= .seconds(10) {
                lastReport = ContinuousClock.now
                report("  \(count - left) of \(count) checked after \(seconds(lastReport - start)) s")
            }
            if ContinuousClock.now - start > .seconds(600) {
                report("gave up: \(left) payments still unchecked after 600 s")
                break
            }
        }
        let elapsed = seconds(ContinuousClock.now - start)
        report(
            String(
                format:
                    "%d payments due at once, concurrency %d, sandbox 5 ms a check: all checked in %.1f s (%.0f checks/s; %.0f/s needed) = %.2f of the 60 s interval",
                count,
                concurrency,
                elapsed,
                Double(count) / elapsed,
                Double(count) / 60,
                elapsed / 60
            )
        )

        // Nothing due: every next check an hour away (as after a quiet
        // spell), and 30 s of the process's CPU time.
        try await database.write { db in
            try db.execute(
                sql: "UPDATE payments SET next_check_at_ms = ? WHERE status = 'new'",
                arguments: [Int64(Date().timeIntervalSince1970 * 1000) + 3_600_000]
            )
        }
        try await Task.sleep(for: .seconds(5))
        let before = cpuSeconds()
        try await Task.sleep(for: .seconds(30))
        let used = cpuSeconds() - before
        report(
            String(
                format: "%d New payments, none due: %.2f ms of CPU a second (%.3f %% of one core)",
                count,
                used * 1000 / 30,
                used * 100 / 30
            )
        )
        await application.shutdown()
    }

    /// COUNT hosted sandbox top-ups, 32 calls at a time; reports the rate of each tenth.
    private static func create(_ count: Int, _ configuration: BillingConfiguration, logger: Logger) async throws {
        let application = try await BillingApplication.start(configuration, logger: logger)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let tls = try developmentClientTLS(configuration.dataDirectory)
        let client = TTRPCClient(host: "127.0.0.1", port: application.port, tls: tls, group: group)
        let accounts = BillingV1.AccountsClient(transport: client)
        let balance = BillingV1.BalanceClient(transport: client)
        var create = BillingV1.CreateAccountRequest()
        create.accountId = "acc-poller"
        create.displayName = "Poller"
        _ = try await accounts.createAccount(create)
        var payer = BillingV1.CreatePayerRequest()
        payer.accountId = "acc-poller"
        payer.displayName = "Payer"
        payer.email = "p@example.com"
        let payerID = try await accounts.createPayer(payer).id
        var request = BillingV1.CreateTopUpRequest()
        request.accountId = "acc-poller"
        request.payerId = payerID
        var money = BillingV1.Money()
        money.amountMinorUnits = 10_00
        money.currency = "USD"
        request.amount = money
        var chosen = BillingV1.PaymentSystemOption()
        chosen.system = .sandbox
        chosen.returnUrl = "https://panel.example/payments"
        var option = BillingV1.PaymentOption()
        option.option = .paymentSystem(chosen)
        request.option = option
        let topUp = request

        report("creating \(count) hosted sandbox top-ups, 32 at a time (rate per tenth):")
        let tenth = max(1, count / 10)
        var made = 0
        while made < count {
            let start = ContinuousClock.now
            let batch = min(tenth, count - made)
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for worker in 0..<32 {
                    tasks.addTask {
                        var index = worker
                        while index < batch {
                            _ = try await balance.createTopUp(topUp)
                            index += 32
                        }
                    }
                }
                try await tasks.waitForAll()
            }
            made += batch
            report(
                String(format: "  %7d made: %.0f a second", made, Double(batch) / seconds(ContinuousClock.now - start))
            )
        }
        await client.close()
        try await group.shutdownGracefully()
        await application.shutdown()
    }

    private static func unchecked(_ database: DatabaseQueue, dueAtMs: Int64) async throws -> Int {
        try await database.read { db in
            try Int.fetchOne(
                db,
                sql: "SELECT COUNT(*) FROM payments WHERE status = 'new' AND next_check_at_ms <= ?",
                arguments: [dueAtMs]
            ) ?? 0
        }
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// User and system CPU time of this process so far.
    private static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}
