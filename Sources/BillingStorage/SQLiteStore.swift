public import BillingCore
internal import Foundation
internal import GRDB
internal import Synchronization

/// The billing database: one SQLite file in WAL mode, reached through GRDB's
/// `DatabasePool` (one writer connection, concurrent readers).
///
/// Persistence only. The rules live in BillingCore: a public method here
/// reads the records a decision needs through the repositories
/// (`Repositories/`), calls the decision, and writes the effects it returns
/// through `UnitOfWork`, all in one write transaction; reads are one read
/// transaction. Nothing here decides what a change means.
///
/// Every public method is one transaction: it commits whole or not at all, and
/// the events it appends commit with it. Safe to call from any task; writes are
/// serialised by the pool's single writer, which is also what makes the event
/// sequence gap-free.
public final class SQLiteStore: SQLStore {
    let pool: DatabasePool
    /// Connections kept for point reads on the caller's thread (`readNow`):
    /// one for each thread that may read at once (event loops and the
    /// cooperative pool, one each per core), so one is nearly always free.
    static let pointReaderCount = max(4, 2 * ProcessInfo.processInfo.activeProcessorCount)
    public let configuration: StorageConfiguration
    public let clock: any BillingClock
    /// Bumped once per committed batch of writes.
    public let commits: CommitSignal
    public let observer: StoreObserver?
    /// Every write goes through it: callers share commits (one fsync each batch).
    let writer: GroupCommit
    /// Read-only connections for `readNow`, each used by one caller at a time.
    private let pointReaders: Mutex<[DatabaseQueue]>

    /// Opens (creating if needed, readable by its owner only), checks and
    /// migrates the file.
    ///
    /// A damaged file is refused: `PRAGMA quick_check` runs before anything
    /// is served (it reads every page once: about a second per few hundred
    /// MB), because a ledger read from a damaged page would credit or debit
    /// the wrong amounts. Restore the file from a backup.
    ///
    /// - Parameters:
    ///   - clock: the time records are written with; tests pass a `ManualClock`.
    ///   - observer: told of every transaction and committed decision (metrics).
    /// - Throws: `BillingError.storage` if the file cannot be opened or
    ///   migrated, or is damaged.
    public init(
        _ configuration: StorageConfiguration,
        clock: any BillingClock = SystemClock(),
        observer: StoreObserver? = nil
    ) throws(BillingError) {
        self.configuration = configuration
        self.clock = clock
        self.observer = observer
        var config = Configuration()
        config.foreignKeysEnabled = true
        config.busyMode = .timeout(Double(configuration.busyTimeout.milliseconds) / 1000)
        try Self.createPrivately(configuration.path)
        do {
            pool = try DatabasePool(path: configuration.path, configuration: config)
            // FULL: a committed credit survives power loss, not only a crash
            // (WAL keeps that to one fsync of the log per commit). Set on the
            // writer after GRDB opened it: GRDB's pool sets NORMAL when it
            // turns WAL on, after any prepareDatabase, and NORMAL syncs the
            // log only at checkpoints. Read back, so a change there fails here.
            let level = try pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = FULL")
                return try Int.fetchOne(db, sql: "PRAGMA synchronous")
            }
            guard level == 2 else {
                throw BillingError.storage("SQLite refused synchronous = FULL (it is \(level ?? -1))", retryable: false)
            }
        } catch {
            throw Self.map(error)
        }
        let commits = CommitSignal()
        self.commits = commits
        writer = GroupCommit(
            batch: { [pool] works in try await Self.batch(works, on: pool) },
            committed: { commits.committed() }
        )
        var readOnly = Configuration()
        readOnly.readonly = true
        readOnly.busyMode = .timeout(Double(configuration.busyTimeout.milliseconds) / 1000)
        do {
            pointReaders = Mutex(
                try (0..<Self.pointReaderCount).map { _ in
                    try DatabaseQueue(path: configuration.path, configuration: readOnly)
                }
            )
        } catch {
            throw Self.map(error)
        }
        let damage: [String]
        do {
            damage = try pool.read { db in try String.fetchAll(db, sql: "PRAGMA quick_check(20)") }
        } catch {
            throw .storage(
                "the database \(configuration.path) cannot be read (\(Self.map(error))): it is damaged or not a billingd database; restore it from a backup",
                retryable: false
            )
        }
        guard damage == ["ok"] else {
            throw .storage(
                "the database \(configuration.path) is damaged (\(damage.prefix(3).joined(separator: "; "))): billingd will not serve it; restore it from a backup",
                retryable: false
            )
        }
        do {
            try Schema.migrator.migrate(pool)
        } catch {
            throw Self.map(error)
        }
    }

    /// A consistent copy of the whole database at `destination`, taken while
    /// others keep writing (SQLite's online backup, one read snapshot), then
    /// checked whole (`checkStorage` on the copy: integrity, every balance
    /// against its ledger, the event log gap-free). The copy is written to a
    /// new file beside `destination`, mode 0600, and renamed into place only
    /// once it checked out; an existing `destination` is never overwritten.
    ///
    /// - Returns: the copy's accounts and its latest event sequence (where
    ///   streams resume after a restore).
    /// - Throws: `failedPrecondition` when `destination` exists; `storage`
    ///   when the copy cannot be made or does not check out (nothing is left
    ///   at `destination` then).
    public func backup(to destination: String) async throws(BillingError) -> (accounts: Int, latestSequence: UInt64) {
        try await Self.backup(from: pool, to: destination)
    }

    /// The same from the database file at `source`, opened read-only: no
    /// check, migration or write touches the live database (a newer
    /// billingd's backup never migrates an older one's file).
    public static func backup(
        databaseAt source: String,
        to destination: String
    ) async throws(BillingError) -> (accounts: Int, latestSequence: UInt64) {
        var configuration = Configuration()
        configuration.readonly = true
        let reader: DatabaseQueue
        do {
            reader = try DatabaseQueue(path: source, configuration: configuration)
        } catch {
            throw .storage("cannot open \(source): \(map(error))", retryable: false)
        }
        defer { try? reader.close() }
        return try await backup(from: reader, to: destination)
    }

    private static func backup(
        from source: some DatabaseReader,
        to destination: String
    ) async throws(BillingError) -> (accounts: Int, latestSequence: UInt64) {
        guard !FileManager.default.fileExists(atPath: destination) else {
            throw .failedPrecondition("\(destination) exists; a backup never overwrites a file")
        }
        let partial = destination + ".partial-\(getpid())-\(IDs.make("b").suffix(8))"
        // A new file of our own, never one already there (nor a link someone
        // placed under that name): the copy cannot land anywhere else.
        let fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw .storage("cannot create \(partial): \(String(cString: strerror(errno)))", retryable: false)
        }
        _ = Foundation.close(fd)
        defer { for suffix in ["", "-wal", "-shm", "-journal"] { unlink(partial + suffix) } }
        do {
            let copy = try DatabaseQueue(path: partial)
            try source.backup(to: copy)
            try copy.close()
        } catch {
            throw Self.map(error)
        }
        let checked = try SQLiteStore(StorageConfiguration(path: partial))
        let (accounts, problems) = try await checked.checkStorage()
        let latest = try await checked.latestSequence()
        try checked.close()
        guard problems.isEmpty else {
            throw .storage(
                "the copy does not check out: \(problems.prefix(3).joined(separator: "; "))",
                retryable: false
            )
        }
        guard link(partial, destination) == 0 else {
            throw .storage("cannot write \(destination): \(String(cString: strerror(errno)))", retryable: false)
        }
        return (accounts, latest)
    }

    /// The point readers close first, so that the pool's writer is the last
    /// connection and checkpoints the log into the file as it closes (a
    /// read-only connection cannot).
    deinit {
        for reader in pointReaders.withLock({ readers in
            defer { readers = [] }
            return readers
        }) {
            try? reader.close()
        }
    }

    /// Refuses a file that is not a billingd database (any other SQLite file,
    /// an empty file), opened read-only: nothing is written to it.
    public static func requireBillingDatabase(at path: String) throws(BillingError) {
        var configuration = Configuration()
        configuration.readonly = true
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            let tables = try queue.read { db in
                try String.fetchAll(
                    db,
                    sql:
                        "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('grdb_migrations', 'accounts', 'ledger', 'events', 'payments')"
                )
            }
            guard Set(tables).count == 5 else {
                throw BillingError.failedPrecondition("\(path) is not a billingd database (it lacks billingd's tables)")
            }
        } catch let error as BillingError {
            throw error
        } catch {
            throw .failedPrecondition("\(path) is not a billingd database: \(map(error))")
        }
    }

    /// Closes the database (its last connection checkpoints the log).
    public func close() throws(BillingError) {
        do {
            for reader in pointReaders.withLock({ readers in
                defer { readers = [] }
                return readers
            }) {
                try reader.close()
            }
            try pool.close()
        } catch {
            throw Self.map(error)
        }
    }

    /// A new database file is made readable by its owner only (0600), before
    /// SQLite opens it: SQLite gives the -wal and -shm files the same mode, so
    /// the ledger is never readable by others, whatever the umask or the
    /// folder's mode. An existing file keeps its mode (see `--check-config`).
    static func createPrivately(_ path: String) throws(BillingError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd >= 0 {
            _ = Foundation.close(fd)
        } else if errno != EEXIST {
            throw .storage("cannot create \(path): \(String(cString: strerror(errno)))", retryable: false)
        }
    }

    /// Writes a file at an earlier schema version, for the tests that prove
    /// every earlier version migrates at open.
    static func createFile(path: String, upTo migration: String) throws {
        let pool = try DatabasePool(path: path)
        try Schema.migrator.migrate(pool, upTo: migration)
        try pool.close()
    }

    // MARK: Transactions

    /// A batch of `GroupCommit`: one `BEGIN IMMEDIATE` transaction on the
    /// pool's writer, each work in a savepoint.
    private static func batch(
        _ works: [GroupCommit.Work],
        on pool: DatabasePool
    ) async throws -> [Result<any Sendable, any Error>] {
        try await pool.writeWithoutTransaction { db in
            var results: [Result<any Sendable, any Error>] = []
            results.reserveCapacity(works.count)
            let session = SQLiteSession(db)
            try db.inTransaction(.immediate) {
                for work in works {
                    var result: Result<any Sendable, any Error> = .failure(CancellationError())
                    do {
                        try db.inSavepoint {
                            result = .success(try work(session))
                            return .commit
                        }
                    } catch {
                        result = .failure(error)
                        // An error that ended the whole transaction (SQLite
                        // rolls back on some I/O errors) fails the batch.
                        guard db.isInsideTransaction else { throw error }
                    }
                    results.append(result)
                }
                return .commit
            }
            return results
        }
    }

    public func write<T: Sendable>(
        _ body: @escaping @Sendable (any SQLSession) throws -> T
    ) async throws(BillingError) -> T {
        try await observed(.write, mapping: Self.map) { try await writer.write(body) }
    }

    /// A point read of ONE statement (one account's balance) on the calling
    /// thread: a reader connection of the pool, no hop to another thread
    /// and back, and no BEGIN/COMMIT around it (one SELECT is its own
    /// snapshot). WAL readers take no lock a writer holds, so it waits for
    /// nothing but the read itself: tens of microseconds with the statement
    /// cached. Anything longer, or of several statements, uses `read`.
    public func readNow<T: Sendable>(
        _ body: @escaping @Sendable (any SQLSession) throws -> T
    ) async throws(BillingError) -> T {
        // A connection of our own when one is free; else the pool's, without
        // blocking this thread (the pool's readers may be waiting for it).
        guard let reader = pointReaders.withLock({ $0.popLast() }) else { return try await read(body) }
        defer { pointReaders.withLock { $0.append(reader) } }
        return try await observed(.read, mapping: Self.map) { try Self.readHere(reader, body) }
    }

    /// GRDB's synchronous read, on this thread (not its async overload).
    private static func readHere<T>(_ reader: DatabaseQueue, _ body: (any SQLSession) throws -> T) throws -> T {
        try reader.unsafeRead { db in try body(SQLiteSession(db)) }
    }

    public func read<T: Sendable>(
        _ body: @escaping @Sendable (any SQLSession) throws -> T
    ) async throws(BillingError) -> T {
        try await readDatabase { db in try body(SQLiteSession(db)) }
    }

    /// A read transaction on GRDB's own connection (SQLite's PRAGMAs).
    func readDatabase<T: Sendable>(
        _ body: @escaping @Sendable (Database) throws -> T
    ) async throws(BillingError) -> T {
        try await observed(.read, mapping: Self.map) { try await pool.read(body) }
    }

    /// SQLite's extended code and message, never the statement's arguments.
    static func map(_ error: any Error) -> BillingError {
        if let billing = error as? BillingError { return billing }
        if let database = error as? DatabaseError {
            let busy = database.resultCode == .SQLITE_BUSY || database.resultCode == .SQLITE_LOCKED
            return .storage(
                "SQLite error \(database.extendedResultCode.rawValue): \(database.message ?? "no message")",
                retryable: busy
            )
        }
        return .storage("\(type(of: error))", retryable: false)
    }

    /// `PRAGMA integrity_check` and `foreign_key_check`: "ok" or what is wrong.
    public func integrityCheck() async throws(BillingError) -> String {
        try await readDatabase { db in
            let integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            let foreign = try Row.fetchAll(db, sql: "PRAGMA foreign_key_check")
            if integrity == ["ok"] && foreign.isEmpty { return "ok" }
            return (integrity + foreign.map { "\($0)" }).joined(separator: "; ")
        }
    }

    /// Everything `integrityCheck` does, then the money's own invariants
    /// (`Invariants`). Returns the accounts checked and one line per problem
    /// (none when all is well).
    public func checkStorage() async throws(BillingError) -> (accounts: Int, problems: [String]) {
        let integrity = try await integrityCheck()
        let (accounts, problems) = try await read { db in try Invariants.check(db) }
        return (accounts, (integrity == "ok" ? [] : ["SQLite: \(integrity.prefix(2000))"]) + problems)
    }
}
