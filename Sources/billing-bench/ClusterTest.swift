import BillingPostgres
import BillingStorage
import BillingTestSupport
import Foundation
import NIOPosix
import Synchronization

/// The crash test on a cluster: three billingd instances (the real
/// executable) on one throw-away PostgreSQL, the crash test's mixed load
/// spread over all three, one instance SIGKILLed at a random moment and
/// restarted, again and again. The instances share one data directory (the
/// development certificates and the sandbox's file), as instances behind a
/// load balancer share their payment systems.
///
/// Checks after the last round (`CrashTest.check`): balance = ledger sum per
/// account, one credit per Paid payment and none for any other, the event
/// log gap-free, the sandbox's decisions and the payments agreeing; a
/// watcher on each instance saw its account's events 1, 2, … exactly once,
/// in order; and no payment was checked by two instances at the same
/// moment (each poller logs when its checks start and end on the machine's
/// monotonic clock; a killed instance's unfinished check ends at its kill).
enum ClusterTest {
    static let instances = 3

    struct Check {
        var start: UInt64
        var end: UInt64
        var owner: String
    }

    static func run(kills: Int, seed: UInt64) async throws {
        let server = try await PostgresServer.start()
        do {
            try await run(kills: kills, seed: seed, server: server)
            await server.stop()
        } catch {
            report("PostgreSQL's log ends with:\n\(server.log.suffix(3000))")
            await server.stop()
            throw error
        }
    }

    private static func run(kills: Int, seed: UInt64, server: PostgresServer) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "billing-cluster-\(UUID().uuidString)"
        ).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let url = server.url(database: try await server.createDatabase())
        let config = directory + "/billingd.json"
        try """
        {"poller": {"intervalSeconds": 0.2, "leaseSeconds": 10, "maxBackoffSeconds": 2},
         "limits": {"shutdownGraceSeconds": 2}, "sandbox": {"latencyMilliseconds": 50},
         "storage": {"postgres": {"url": "\(url)", "poolSize": 4}}}
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var random = SplitMix64(seed: seed)
        report("cluster crash test: \(instances) instances on PostgreSQL, \(kills) kills, seed \(seed)")
        // Every incarnation's log, and when it was killed (nil: stopped).
        var logs: [(lines: CrashTest.LogLines, killedAt: UInt64?)] = []
        func start() async throws -> CrashTest.Child {
            let lines = CrashTest.LogLines()
            logs.append((lines, nil))
            return try await CrashTest.Child.start(
                directory: directory,
                config: config,
                logLevel: "debug",
                keeping: lines
            )
        }
        // The first makes the development certificates the others then use.
        var daemons = [try await start()]
        var incarnation = [0]
        for _ in 1..<instances {
            daemons.append(try await start())
            incarnation.append(logs.count - 1)
        }
        var payers: [String: String] = [:]
        do {
            let clients = try daemons[0].clients(group: group)
            for account in CrashTest.accounts {
                payers[account] = try await CrashTest.provision(account, clients)
            }
            await clients.close()
        }
        let records = (0..<instances).map { _ in CrashTest.Record() }
        let started = ContinuousClock.now
        for kill in 0...kills {
            let clients = try daemons.map { try $0.clients(group: group) }
            var tasks: [Task<Void, Never>] = []
            for index in 0..<instances {
                let (seed, daemon, known, record) = (random.next(), daemons[index], payers, records[index])
                tasks.append(
                    Task {
                        await CrashTest.load(
                            clients: clients[index],
                            payers: known,
                            daemon: daemon,
                            record: record,
                            group: group,
                            seed: seed
                        )
                    }
                )
                for account in CrashTest.accounts {
                    tasks.append(Task { await CrashTest.watch(account, clients: clients[index], record: record) })
                }
            }
            var victim: Int?
            if kill < kills {
                try await Task.sleep(for: .milliseconds(Int.random(in: 300...2500, using: &random)))
                let chosen = Int.random(in: 0..<instances, using: &random)
                logs[incarnation[chosen]].killedAt = monotonicNanoseconds()
                await daemons[chosen].kill()
                victim = chosen
            } else {
                try await Task.sleep(for: .seconds(3))
            }
            for task in tasks { task.cancel() }
            for task in tasks { await task.value }
            for client in clients { await client.close() }
            if let victim {
                daemons[victim] = try await start()
                incarnation[victim] = logs.count - 1
            }
        }
        // Settle, then let every instance's watchers catch up.
        var postgres = try PostgresConfiguration(url: url)
        postgres.poolSize = 2
        let store = try await PostgresStore.open(StorageConfiguration(path: ""), postgres: postgres)
        let books = CrashTest.Books(store: store, sandboxPath: directory + "/sandbox.sqlite")
        try await CrashTest.settle(books)
        let clients = try daemons.map { try $0.clients(group: group) }
        var watchers: [Task<Void, Never>] = []
        for index in 0..<instances {
            for account in CrashTest.accounts {
                let record = records[index]
                watchers.append(Task { await CrashTest.watch(account, clients: clients[index], record: record) })
            }
        }
        // Until every instance's watchers have their accounts' last events (bounded: a
        // loaded machine is slow, and a watcher that never catches up is reported below).
        let latest = try await store.read { db in
            var latest: [String: UInt64] = [:]
            for row in try db.rows("SELECT account_id, MAX(account_sequence) AS top FROM events GROUP BY account_id") {
                latest[try row.get("account_id")] = UInt64(try row.get("top") as Int64)
            }
            return latest
        }
        let caughtUp = ContinuousClock.now + .seconds(180)
        while ContinuousClock.now < caughtUp,
            !records.allSatisfy({ record in latest.allSatisfy { record.lastSeen($0.key) == $0.value } })
        {
            try await Task.sleep(for: .milliseconds(100))
        }
        for watcher in watchers { watcher.cancel() }
        for watcher in watchers { await watcher.value }
        for client in clients { await client.close() }
        for daemon in daemons { await daemon.stop() }
        // Every log read to its end (a loaded machine may lag behind the exits).
        let deadline = ContinuousClock.now + .seconds(120)
        while !logs.allSatisfy({ $0.lines.isComplete }) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        try await group.shutdownGracefully()
        let elapsed = ContinuousClock.now - started

        var problems: [String] = []
        for (index, record) in records.enumerated() {
            for problem in try await CrashTest.check(books, record: record) where !problems.contains(problem) {
                problems.append(index == 0 ? problem : "instance \(index + 1): \(problem)")
            }
        }
        let latestSequence = try await store.latestSequence()
        // Every event committed before the catch-up began reached every instance's
        // watchers (the pollers may still write later ones; `check` proved each
        // watcher's sequence has no gap and no repeat).
        for (index, record) in records.enumerated() {
            for (account, last) in latest.sorted(by: { $0.key < $1.key }) where record.lastSeen(account) < last {
                problems.append(
                    "the watcher of \(account) on instance \(index + 1) saw up to \(record.lastSeen(account)) of \(last) events"
                )
            }
        }
        // The detector itself first: two checks of one payment that overlap must be found.
        let first = CrashTest.LogLines(), second = CrashTest.LogLines()
        first.append(
            """
            x debug billingd: monotonic_ns=100 owner=a payment=pay_probe [BillingServer] payment check started
            x debug billingd: monotonic_ns=200 owner=a payment=pay_probe [BillingServer] payment check ended

            """
        )
        second.append(
            "x debug billingd: monotonic_ns=150 owner=b payment=pay_probe [BillingServer] payment check started\n"
        )
        guard overlappingChecks([(first, nil), (second, 300)]).1.count == 1 else {
            report("VIOLATION: the overlap detector does not find a known overlap")
            throw CrashTest.ExitFailure()
        }
        let (checks, overlaps) = overlappingChecks(logs)
        problems += overlaps
        let figures = try await CrashTest.figures(books)
        await store.close()
        let operations = records.reduce(0) { $0 + $1.operations }
        let failures = records.reduce(0) { $0 + $1.failures }
        report(
            "ran \(elapsed), \(kills) SIGKILLs and restarts across \(instances) instances; \(operations) operations answered, \(failures) failed (killed mid-call)"
        )
        report(
            "payments \(figures.payments) (paid \(figures.paid), cancelled \(figures.cancelled), new \(figures.new)), ledger entries \(figures.ledger), events \(figures.events) (latest \(latestSequence)), poller checks \(checks) by \(Set(logs.indices).count) incarnations, watchers \(instances) × \(CrashTest.accounts.count)"
        )
        if problems.isEmpty {
            report("all invariants hold")
        } else {
            for problem in problems.prefix(40) { report("VIOLATION: \(problem)") }
            throw CrashTest.ExitFailure()
        }
    }

    /// The pollers' checks from every log, and any two of one payment that
    /// overlap in time.
    static func overlappingChecks(_ logs: [(lines: CrashTest.LogLines, killedAt: UInt64?)]) -> (Int, [String]) {
        var intervals: [String: [Check]] = [:]
        var count = 0
        for (lines, killedAt) in logs {
            var open: [String: (start: UInt64, owner: String)] = [:]
            for line in lines.lines where line.contains("payment check") {
                guard let payment = line.firstMatch(of: /payment=(\S+)/)?.1,
                    let owner = line.firstMatch(of: /owner=(\S+)/)?.1,
                    let time = line.firstMatch(of: /monotonic_ns=(\d+)/).flatMap({ UInt64($0.1) })
                else { continue }
                if line.contains("payment check started") {
                    open[String(payment)] = (time, String(owner))
                    count += 1
                } else if line.contains("payment check ended"), let begun = open.removeValue(forKey: String(payment)) {
                    intervals[String(payment), default: []].append(
                        Check(start: begun.start, end: time, owner: begun.owner)
                    )
                }
            }
            // Checks a kill cut short ran until the kill.
            for (payment, begun) in open {
                intervals[payment, default: []].append(
                    Check(start: begun.start, end: killedAt ?? UInt64.max, owner: begun.owner)
                )
            }
        }
        var problems: [String] = []
        for (payment, checks) in intervals {
            let sorted = checks.sorted { $0.start < $1.start }
            for (earlier, later) in zip(sorted, sorted.dropFirst()) where later.start < earlier.end {
                let lasted =
                    earlier.end == UInt64.max ? "never ended" : "lasted \((earlier.end - earlier.start) / 1_000_000) ms"
                problems.append(
                    "payment \(payment) was checked by \(earlier.owner) (its check \(lasted)) and by \(later.owner) \((later.start - earlier.start) / 1_000_000) ms after it began"
                )
            }
        }
        return (count, problems)
    }

    static func monotonicNanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
