import BillingTLS
import Foundation

/// One line of results, written at once (not buffered: a long run into a pipe
/// or file shows its figures as they come).
func report(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

// billingd's benchmarks; figures go to docs/BENCHMARKS.md.
//
//   billing-bench transitions [COUNT] [TASKS]   committed payment transitions/s on SQLite
//   billing-bench rpc [SECONDS]                 unary calls/s with p50/p99, and stream messages/s,
//                                               over mutual TLS on 127.0.0.1
//   billing-bench balance [SECONDS]             Balance/GetBalance calls/s through a whole billingd
//   billing-bench fanout [CALLS]                CreateTopUp latency with 0/1,000/10,000 idle watchers of other
//                                               accounts; one transition to 10,000 watchers of its account
//   billing-bench poller [COUNT] [CONCURRENCY]  COUNT New sandbox payments due at once, 5 ms a check: the time
//                                               until all are checked, and the CPU used when none is due
//   billing-bench rpc-client HOST:PORT DIR [SECONDS]  the same unary figures against any ttrpc server
//                                               (DIR holds ca.pem, internal.pem, internal-key.pem)
//   billing-bench certs DIR                     writes the development certificate set into DIR
//   billing-bench crash [KILLS] [SEED]          the whole-process crash test: billingd as a child under mixed
//                                               load, SIGKILLed and restarted KILLS times, then the books checked
//   billing-bench transitions-postgres [COUNT] [TASKS] [ROUNDS]  the same on PostgreSQL (1 and 3 instances) beside SQLite, interleaved
//   billing-bench cluster [KILLS] [SEED]        the crash test on three billingd instances sharing one PostgreSQL
//   billing-bench crash-writer PATH             the durability test's child (writes until killed)

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "transitions":
    try await TransitionBenchmark.run(
        count: arguments.dropFirst().first.flatMap { Int($0) } ?? 2_000,
        tasks: arguments.dropFirst(2).first.flatMap { Int($0) } ?? 8
    )
case "rpc":
    try await RPCBenchmark.run(secondsPerLevel: arguments.dropFirst().first.flatMap { Int($0) } ?? 3)
case "balance":
    try await BalanceBenchmark.run(secondsPerLevel: arguments.dropFirst().first.flatMap { Int($0) } ?? 3)
case "fanout":
    try await FanOutBenchmark.run(calls: arguments.dropFirst().first.flatMap { Int($0) } ?? 300)
case "poller":
    try await PollerBenchmark.run(
        count: arguments.dropFirst().first.flatMap { Int($0) } ?? 100_000,
        concurrency: arguments.dropFirst(2).first.flatMap { Int($0) } ?? 64
    )
case "rpc-client" where arguments.count >= 3:
    let target = arguments[1].split(separator: ":")
    try await RPCBenchmark.runClient(
        host: String(target[0]),
        port: Int(target[1]) ?? 0,
        certificates: arguments[2],
        secondsPerLevel: arguments.dropFirst(3).first.flatMap { Int($0) } ?? 3
    )
case "certs" where arguments.count == 2:
    try DevelopmentCertificates.ensure(in: arguments[1])
case "crash":
    do {
        try await CrashTest.run(
            kills: arguments.dropFirst().first.flatMap { Int($0) } ?? 100,
            seed: arguments.dropFirst(2).first.flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
        )
    } catch {
        report("crash test failed: \(error)")
        exit(1)
    }
case "transitions-postgres":
    try await PostgresBenchmark.run(
        count: arguments.dropFirst().first.flatMap { Int($0) } ?? 2_000,
        tasks: arguments.dropFirst(2).first.flatMap { Int($0) } ?? 64,
        rounds: arguments.dropFirst(3).first.flatMap { Int($0) } ?? 3
    )
case "cluster":
    do {
        try await ClusterTest.run(
            kills: arguments.dropFirst().first.flatMap { Int($0) } ?? 20,
            seed: arguments.dropFirst(2).first.flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
        )
    } catch {
        report("cluster crash test failed: \(error)")
        exit(1)
    }
case "crash-writer" where arguments.count == 2:
    try await CrashWriter.run(path: arguments[1])
default:
    print(
        "usage: billing-bench transitions [COUNT] [TASKS] | rpc [SECONDS] | balance [SECONDS] | fanout [CALLS] | poller [COUNT] [CONCURRENCY] | rpc-client HOST:PORT DIR [SECONDS] | certs DIR | crash [KILLS] [SEED] | transitions-postgres [COUNT] [TASKS] [ROUNDS] | cluster [KILLS] [SEED] | crash-writer PATH"
    )
}

/// A client TLS context with the development certificate of `role`
/// ("internal", "operator") that billingd wrote into `dataDirectory`/tls.
func developmentClientTLS(_ dataDirectory: String, role: String = "internal") throws -> TLSContext {
    try TLSContext(
        TLSConfiguration(
            role: .client(serverName: "localhost"),
            certificateChainPath: "\(dataDirectory)/tls/\(role).pem",
            privateKeyPath: "\(dataDirectory)/tls/\(role)-key.pem",
            trustRootsPath: "\(dataDirectory)/tls/ca.pem"
        )
    )
}
