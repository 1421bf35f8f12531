public import BillingCore
public import BillingStorage
internal import Foundation
public import Logging
internal import NIOCore
internal import NIOPosix
internal import NIOSSL
internal import PostgresNIO
internal import Synchronization

/// The billing database on PostgreSQL, for several billingd instances on one
/// database. The same `SQLStore` as SQLite: every `BillingStore` method,
/// repository and statement is shared; this file supplies transactions.
///
/// - **Writes** (everything that changes money, payments or events) go
///   through `GroupCommit` on one writer connection per instance; each batch
///   is one READ COMMITTED transaction that first takes the store's write
///   lock (`pg_advisory_xact_lock`), held until it commits. Writers of all
///   instances are thus serialised, as SQLite's one writer is: each sees
///   every write committed before it, the event log's `MAX + 1` numbers are
///   gap-free, and commit order is sequence order (a transaction's commit is
///   visible before its lock is released, so a reader that sees event n+1
///   sees n). A batch ends with `pg_notify`: the other instances' streams
///   and pollers wake (`LISTEN`), and a missed notification costs latency,
///   never an event (streams read the table).
/// - **Claims** by the poller take no write lock: one `UPDATE … WHERE id IN
///   (SELECT … FOR UPDATE SKIP LOCKED)`, so instances never claim the same
///   payment and never wait for each other's claims.
/// - **Reads** run on a pool of connections: a transaction is REPEATABLE READ
///   READ ONLY (one snapshot), a point read one statement.
///
/// Statements run synchronously on threads of the store's own
/// (`NIOThreadPool`), never on an event loop or the cooperative pool.
public final class PostgresStore: SQLStore {
    public let configuration: StorageConfiguration
    public let clock: any BillingClock
    public let commits: CommitSignal
    public let observer: StoreObserver?
    public let postgres: PostgresConfiguration

    /// The key of the write lock (any constant no other application uses).
    static let writeLock: Int64 = 0x6269_6c6c_696e_6764  // "billingd"
    static let migrationLock: Int64 = 0x6269_6c6c_6d69_6772  // "billmigr"
    static let channel = "billingd_commits"

    private let connections: Connections
    private let writer: GroupCommit
    private let logger: Logger
    private let listener = Mutex<Task<Void, Never>?>(nil)

    /// Connects, migrates the schema (once, whichever instance comes first)
    /// and starts listening for other instances' commits.
    ///
    /// - Throws: `BillingError.storage` when the server cannot be reached,
    ///   refuses the login or the schema cannot be migrated.
    public static func open(
        _ configuration: StorageConfiguration,
        postgres: PostgresConfiguration,
        clock: any BillingClock = SystemClock(),
        observer: StoreObserver? = nil,
        logger: Logger = Logger(label: "billingd.postgres")
    ) async throws(BillingError) -> PostgresStore {
        let store = try PostgresStore(
            configuration,
            postgres: postgres,
            clock: clock,
            observer: observer,
            logger: logger
        )
        do {
            let now = clock.nowMs
            try await store.connections.onWriter { session in try PostgresMigrator.migrate(session, nowMs: now) }
        } catch {
            await store.close()
            throw error
        }
        store.startListening()
        return store
    }

    /// Connects once and says what is there, changing nothing
    /// (`billingd --check-config`): the server's version, and the schema
    /// version and number of accounts if billingd's tables exist.
    ///
    /// - Throws: `BillingError.storage` when the server cannot be reached or
    ///   refuses the login (the reason in PostgreSQL's words).
    public static func probe(
        _ postgres: PostgresConfiguration,
        logger: Logger = Logger(label: "billingd.postgres")
    ) async throws(BillingError) -> String {
        let connector = try Connector(postgres, logger: logger)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let connection = try await connector.connectAsync(on: group.next())
            let report = try await NIOThreadPool.singleton.runIfActive { () throws -> String in
                let session = PostgresSession(connection, logger: logger)
                let version = try session.value(String.self, "SELECT current_setting('server_version')") ?? "?"
                let migrated =
                    try session.value(Bool.self, "SELECT to_regclass('billingd_schema') IS NOT NULL") ?? false
                guard migrated else { return "PostgreSQL \(version), no billingd schema yet (made at first start)" }
                let versions = try session.values(String.self, "SELECT version FROM billingd_schema ORDER BY version")
                let accounts = try session.value(Int64.self, "SELECT COUNT(*) FROM accounts") ?? 0
                return "PostgreSQL \(version), schema \(versions.joined(separator: ", ")), \(accounts) accounts"
            }
            try? await connection.close()
            try? await group.shutdownGracefully()
            return report
        } catch {
            try? await group.shutdownGracefully()
            throw map(error)
        }
    }

    private init(
        _ configuration: StorageConfiguration,
        postgres: PostgresConfiguration,
        clock: any BillingClock,
        observer: StoreObserver?,
        logger: Logger
    ) throws(BillingError) {
        guard (1...256).contains(postgres.poolSize) else {
            throw .invalidArgument("storage.postgres.poolSize must be 1 to 256")
        }
        self.configuration = configuration
        self.postgres = postgres
        self.clock = clock
        self.observer = observer
        self.logger = logger
        let connections = try Connections(postgres, logger: logger)
        self.connections = connections
        let commits = CommitSignal()
        self.commits = commits
        writer = GroupCommit(
            batch: { works in try await Self.batch(works, on: connections) },
            committed: { commits.committed() }
        )
    }

    /// Stops listening, closes every connection and stops the threads.
    public func close() async {
        listener.withLock { $0?.cancel() }
        await connections.close()
    }

    // MARK: SQLStore

    public func write<T: Sendable>(
        _ body: @escaping @Sendable (any SQLSession) throws -> T
    ) async throws(BillingError) -> T {
        try await observed(.write, mapping: Self.map) { try await writer.write(body) }
    }

    public func read<T: Sendable>(
        _ body: @escaping @Sendable (any SQLSession) throws -> T
    ) async throws(BillingError) -> T {
        try await onReader(.read) { session in
            try session.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY") { try body(session) }
        }
    }

    public func readNow<T: Sendable>(
        _ body: @escaping @Sendable (any SQLSession) throws -> T
    ) async throws(BillingError) -> T {
        try await onReader(.read, body)
    }

    /// A short transaction of its own that takes no write lock: for claims,
    /// which touch only the poller's columns and lock only their rows.
    func writeUnlocked<T: Sendable>(
        _ body: @escaping @Sendable (PostgresSession) throws -> T
    ) async throws(BillingError) -> T {
        let result = try await onReader(.write) { session in try session.transaction { try body(session) } }
        commits.committed()
        return result
    }

    /// The whole database checked: each balance against its ledger, the
    /// event log gap-free (PostgreSQL checks its own pages).
    public func checkStorage() async throws(BillingError) -> (accounts: Int, problems: [String]) {
        try await read { session in try Invariants.check(session) }
    }

    /// Claims due New payments for `owner` in one statement: rows another
    /// instance is claiming or changing right now are skipped, not waited
    /// for (`FOR UPDATE SKIP LOCKED`), so two pollers never hold the same
    /// payment and a claim never waits behind a write.
    public func claimDuePayments(
        owner: String,
        limit: Int,
        lease: Duration,
        excluding systems: Set<PaymentSystem>
    ) async throws(BillingError) -> [Payment] {
        guard (1...1000).contains(limit) else { throw .invalidArgument("claim limit must be 1 to 1000") }
        let now = clock.nowMs
        let until = now + lease.milliseconds
        let due = PaymentRepository.dueCondition(now: now, excluding: systems)
        // An idle poller never writes: look first.
        let any = try await readNow { session in
            try session.value(
                Int64.self,
                "SELECT COUNT(*) FROM (SELECT 1 FROM payments WHERE \(due.sql) LIMIT 1) AS due",
                due.arguments
            )
        }
        guard (any ?? 0) > 0 else { return [] }
        let claimed = try await writeUnlocked { session in
            try session.rows(
                """
                UPDATE payments SET lease_owner = ?, lease_until_ms = ?
                WHERE id IN (
                    SELECT id FROM payments WHERE \(due.sql)
                    ORDER BY next_check_at_ms, id LIMIT ?
                    FOR UPDATE SKIP LOCKED)
                RETURNING *
                """,
                [owner, until] + due.arguments + [limit]
            ).map(PaymentRepository.payment)
        }
        return claimed.sorted { ($0.nextCheckAtMs ?? 0, $0.id) < ($1.nextCheckAtMs ?? 0, $1.id) }
    }

    /// A claim renewed without the write lock (it touches only the poller's columns).
    public func renewClaim(paymentID: String, owner: String, lease: Duration) async throws(BillingError) -> Bool {
        let until = clock.nowMs + lease.milliseconds
        return try await writeUnlocked { session in
            try PaymentRepository.renew(session, paymentID, owner: owner, until: until)
        }
    }

    // MARK: Connections and threads

    /// A batch of `GroupCommit`: one transaction under the write lock, each
    /// work in a savepoint (none for a batch of one), a notification to the
    /// other instances, one commit. A work that met a deadlock or a
    /// serialization failure runs again (at most three times).
    private static func batch(
        _ works: [GroupCommit.Work],
        on connections: Connections
    ) async throws -> [Result<any Sendable, any Error>] {
        try await connections.onWriter { session in
            try session.transaction {
                try session.execute("SELECT pg_advisory_xact_lock(?)", [writeLock])
                var results: [Result<any Sendable, any Error>] = []
                results.reserveCapacity(works.count)
                for work in works {
                    if works.count == 1 {
                        results.append(.success(try work(session)))
                        continue
                    }
                    var attempt = 0
                    while true {
                        try session.execute("SAVEPOINT work")
                        do {
                            let value = try work(session)
                            try session.execute("RELEASE SAVEPOINT work")
                            results.append(.success(value))
                            break
                        } catch {
                            // A broken connection cannot roll back to anything: the batch fails.
                            try session.execute("ROLLBACK TO SAVEPOINT work")
                            try session.execute("RELEASE SAVEPOINT work")
                            if let failure = error as? PostgresFailure, failure.isConflict, attempt < 3 {
                                attempt += 1
                                continue
                            }
                            results.append(.failure(error))
                            break
                        }
                    }
                }
                try session.execute("SELECT pg_notify(?, '')", [channel])
                return results
            }
        }
    }

    private func onReader<T: Sendable>(
        _ kind: StoreObserver.Kind,
        _ body: @escaping @Sendable (PostgresSession) throws -> T
    ) async throws(BillingError) -> T {
        try await observed(kind, mapping: Self.map) { try await connections.onReader(body) }
    }

    /// One connection that LISTENs for other instances' commits and bumps
    /// `commits` for each; connected again after a failure, and `commits`
    /// bumped then too (what committed meanwhile is read from the tables).
    private func startListening() {
        let task = Task { [connections, commits, logger] in
            var delay = Duration.milliseconds(100)
            while !Task.isCancelled {
                do {
                    let connection = try await connections.connectAsync()
                    connection.addListener(channel: Self.channel) { _, _ in commits.committed() }
                    try await connection.query(PostgresQuery(unsafeSQL: "LISTEN \(Self.channel)"), logger: logger)
                    commits.committed()
                    delay = .milliseconds(100)
                    await withTaskCancellationHandler {
                        try? await connection.closeFuture.get()
                    } onCancel: {
                        _ = connection.close() as EventLoopFuture<Void>
                    }
                } catch {
                    logger.warning(
                        "listening for other instances' commits failed; trying again",
                        metadata: ["error": "\(PostgresFailure(error))"]
                    )
                }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
        listener.withLock { $0 = task }
    }

    /// PostgreSQL's code and primary message, never a statement's arguments.
    static func map(_ error: any Error) -> BillingError {
        if let billing = error as? BillingError { return billing }
        if error is CancellationError { return .storage("cancelled", retryable: true) }
        let failure = PostgresFailure(error)
        // Lost connections, timeouts (57014), a lock not had in time
        // (55P03), conflicts, an unavailable server (57P0x, 08xxx, 53xxx):
        // trying again may work.
        let retryable =
            failure.connectionLost || failure.isConflict || failure.sqlState == "55P03"
            || ["57", "08", "53"].contains(where: { failure.sqlState?.hasPrefix($0) == true })
        return .storage(failure.description, retryable: retryable)
    }
}

/// The store's connections and threads: one writer connection on a thread
/// of its own, `poolSize` pooled connections on as many reader threads, one
/// event loop for their I/O.
final class Connections: Sendable {
    private let connector: Connector
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let readers: NIOThreadPool
    private let writerThread = NIOThreadPool(numberOfThreads: 1)
    private let idle = Mutex<[PostgresConnection]>([])
    private let writerConnection = Mutex<PostgresConnection?>(nil)
    private let logger: Logger
    /// The server's statement timeout and a margin: past it a connection is broken.
    private let answerTimeout: Duration

    init(_ postgres: PostgresConfiguration, logger: Logger) throws(BillingError) {
        connector = try Connector(postgres, logger: logger)
        answerTimeout = postgres.statementTimeout + .seconds(10)
        readers = NIOThreadPool(numberOfThreads: postgres.poolSize)
        self.logger = logger
        readers.start()
        writerThread.start()
    }

    func connectAsync() async throws -> PostgresConnection {
        try await connector.connectAsync(on: group.next())
    }

    func close() async {
        var open: [PostgresConnection] = idle.withLock { all in
            defer { all = [] }
            return all
        }
        if let writer = writerConnection.withLock({ writer -> PostgresConnection? in
            defer { writer = nil }
            return writer
        }) {
            open.append(writer)
        }
        for connection in open { try? await connection.close() }
        try? await readers.shutdownGracefully()
        try? await writerThread.shutdownGracefully()
        try? await group.shutdownGracefully()
    }

    /// Runs `body` on the writer connection (made again if it broke), on the
    /// writer's thread.
    func onWriter<T: Sendable>(
        _ body: @escaping @Sendable (PostgresSession) throws -> T
    ) async throws(BillingError) -> T {
        do {
            return try await writerThread.runIfActive { [self] in
                let connection = try writerConnection.withLock { current in
                    if let current, !current.isClosed { return current }
                    let fresh = try connector.connect(on: group.next())
                    current = fresh
                    return fresh
                }
                let session = PostgresSession(connection, logger: logger, answerTimeout: answerTimeout)
                do {
                    return try body(session)
                } catch let failure as PostgresFailure where failure.connectionLost {
                    writerConnection.withLock { $0 = nil }
                    try? connection.close().wait()
                    throw failure
                }
            }
        } catch {
            throw PostgresStore.map(error)
        }
    }

    /// Runs `body` on a pooled connection, on a reader thread: at most
    /// `poolSize` at once, so a connection is always free for it.
    func onReader<T: Sendable>(
        _ body: @escaping @Sendable (PostgresSession) throws -> T
    ) async throws(BillingError) -> T {
        do {
            return try await readers.runIfActive { [self] in
                // A pooled connection the server closed meanwhile is dropped, not used.
                var pooled = idle.withLock { $0.popLast() }
                while let stale = pooled, stale.isClosed { pooled = idle.withLock { $0.popLast() } }
                let connection = try pooled ?? connector.connect(on: group.next())
                let session = PostgresSession(connection, logger: logger, answerTimeout: answerTimeout)
                do {
                    let result = try body(session)
                    idle.withLock { $0.append(connection) }
                    return result
                } catch {
                    if let failure = error as? PostgresFailure, failure.connectionLost || connection.isClosed {
                        try? connection.close().wait()
                    } else {
                        idle.withLock { $0.append(connection) }
                    }
                    throw error
                }
            }
        } catch {
            throw PostgresStore.map(error)
        }
    }

}

/// Makes connections: the configuration turned into postgres-nio's, with
/// the session settings billingd relies on sent at startup.
final class Connector: Sendable {
    let configuration: PostgresConnection.Configuration
    let logger: Logger
    private let ids = Atomic<Int>(0)

    init(_ postgres: PostgresConfiguration, logger: Logger) throws(BillingError) {
        var configuration: PostgresConnection.Configuration
        if postgres.isUnixSocket {
            configuration = .init(
                unixSocketPath: "\(postgres.host)/.s.PGSQL.\(postgres.port)",
                username: postgres.user,
                password: postgres.password,
                database: postgres.database
            )
        } else {
            let tls: PostgresConnection.Configuration.TLS
            switch postgres.tls {
            case .disable:
                tls = .disable
            case .verifyFull(let caFile):
                var settings = TLSConfiguration.makeClientConfiguration()
                settings.certificateVerification = .fullVerification
                if let caFile { settings.trustRoots = .file(caFile) }
                do {
                    tls = .require(try NIOSSLContext(configuration: settings))
                } catch {
                    throw .invalidArgument("storage.postgres.tls: \(error)")
                }
            }
            configuration = .init(
                host: postgres.host,
                port: postgres.port,
                username: postgres.user,
                password: postgres.password,
                database: postgres.database,
                tls: tls
            )
        }
        configuration.options.connectTimeout = .milliseconds(postgres.connectTimeout.milliseconds)
        configuration.options.additionalStartupParameters = [
            ("application_name", "billingd"),
            ("statement_timeout", "\(postgres.statementTimeout.milliseconds)"),
            // A write waits this long at most for another instance's write lock (or a
            // row lock), then fails retryable: one stalled instance never holds every
            // other instance's writes for long, nor their shutdown.
            ("lock_timeout", "\(min(5_000, postgres.statementTimeout.milliseconds / 2))"),
            // A transaction a stalled instance left open ends, and so does its lock.
            // billingd's transactions send their statements back to back.
            ("idle_in_transaction_session_timeout", "15000"),
        ]
        self.configuration = configuration
        self.logger = logger
    }

    /// Blocking: only on the store's threads.
    func connect(on eventLoop: any EventLoop) throws -> PostgresConnection {
        do {
            return try PostgresConnection.connect(
                on: eventLoop,
                configuration: configuration,
                id: ids.add(1, ordering: .relaxed).newValue,
                logger: logger
            ).wait()
        } catch {
            throw PostgresFailure(error)
        }
    }

    func connectAsync(on eventLoop: any EventLoop) async throws -> PostgresConnection {
        try await PostgresConnection.connect(
            on: eventLoop,
            configuration: configuration,
            id: ids.add(1, ordering: .relaxed).newValue,
            logger: logger
        ).get()
    }
}

/// Applies the migrations not yet applied, each in a transaction of its
/// own, under a session lock: instances that start together migrate once.
enum PostgresMigrator {
    static func migrate(_ session: PostgresSession, nowMs: Int64) throws {
        try session.execute("SELECT pg_advisory_lock(?)", [PostgresStore.migrationLock])
        defer { _ = try? session.execute("SELECT pg_advisory_unlock(?)", [PostgresStore.migrationLock]) }
        try session.execute(
            "CREATE TABLE IF NOT EXISTS billingd_schema (version TEXT PRIMARY KEY NOT NULL, applied_at_ms BIGINT NOT NULL)"
        )
        let applied = Set(try session.values(String.self, "SELECT version FROM billingd_schema"))
        let known = Set(PostgresSchema.migrations.map(\.version))
        if let unknown = applied.subtracting(known).sorted().first {
            throw BillingError.storage(
                "the database has schema version \(unknown), which this billingd does not know: it was written by a newer billingd",
                retryable: false
            )
        }
        for migration in PostgresSchema.migrations where !applied.contains(migration.version) {
            try session.transaction {
                for statement in migration.statements { try session.execute(statement) }
                try session.execute(
                    "INSERT INTO billingd_schema (version, applied_at_ms) VALUES (?, ?)",
                    [migration.version, nowMs]
                )
            }
        }
    }
}
