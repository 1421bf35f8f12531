import BillingAPI
import BillingMessages
import BillingRPC
import BillingServer
import BillingTLS
import BillingTransport
import Foundation
import Logging
import NIOPosix

/// A real read through the whole server: `billing.v1.Balance/GetBalance`
/// (authorization, one SQLite read in WAL mode) over mutual TLS on loopback,
/// against a billingd started in this process on its embedded default.
enum BalanceBenchmark {
    static func run(secondsPerLevel: Int) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "billing-balance-bench-\(UUID().uuidString)"
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
        let transport = TTRPCClient(host: "127.0.0.1", port: application.port, tls: tls, group: group)
        var create = BillingV1.CreateAccountRequest()
        create.accountId = "acc-bench"
        create.displayName = "Bench"
        _ = try await BillingV1.AccountsClient(transport: transport).createAccount(create)
        let balance = BillingV1.BalanceClient(transport: transport)
        var request = BillingV1.GetBalanceRequest()
        request.accountId = "acc-bench"
        let read = request

        print(
            "unary Balance/GetBalance (one SQLite read) over mutual TLS, one connection, \(secondsPerLevel) s per level"
        )
        print("in flight   calls/s   p50 µs   p99 µs")
        for inFlight in [1, 16, 64] {
            let (calls, latencies) = try await RPCBenchmark.measure(inFlight: inFlight, seconds: secondsPerLevel) {
                _ = try await balance.getBalance(read)
            }
            let sorted = latencies.sorted()
            print(
                String(
                    format: "%9d %9d %8d %8d",
                    inFlight,
                    calls / secondsPerLevel,
                    sorted[sorted.count / 2],
                    sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
                )
            )
        }
        await transport.close()
        try await group.shutdownGracefully()
        await application.shutdown()
    }
}
