public import BillingCore
internal import Foundation
internal import GRDB

/// The billing database: one SQLite file in WAL mode, reached through GRDB's
/// `DatabasePool` (one writer connection, concurrent readers).
///
/// Every public method is one transaction: it commits whole or not at all, and
/// the events it appends commit with it. Safe to call from any task; writes are
/// serialised by the pool's single writer, which is also what makes the event
/// sequence gap-free.
public final class SQLiteStore: BillingStore {
    let pool: DatabasePool
    let configuration: StorageConfiguration
    let clock: @Sendable () -> Int64
    public let commits = CommitSignal()

    /// Opens (creating if needed, readable by its owner only), checks and
    /// migrates the file.
    ///
    /// A damaged file is refused: `PRAGMA quick_check` runs before anything
    /// is served (it reads every page once: about a second per few hundred
    /// MB), because a ledger read from a damaged page would credit or debit
    /// the wrong amounts. Restore the file from a backup.
    ///
    /// - Parameter clock: now, in ms since the epoch; tests pass their own.
    /// - Throws: `BillingError.storage` if the file cannot be opened or
    ///   migrated, or is damaged.
    public init(_ configuration: StorageConfiguration, clock: @escaping @Sendable () -> Int64 = SQLiteStore.systemClock) throws(BillingError) {
        self.configuration = configuration
        self.clock = clock
        var config = Configuration()
        config.foreignKeysEnabled = true
        config.busyMode = .timeout(configuration.busyTimeoutSeconds)
        config.prepareDatabase { db in
            // FULL: a committed credit survives power loss, not only a crash.
            // WAL keeps that cheap (one fsync of the log per commit).
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        try Self.createPrivately(configuration.path)
        do {
            pool = try DatabasePool(path: configuration.path, configuration: config)
        } catch {
            throw Self.map(error)
        }
        let damage: [String]
        do {
            damage = try pool.read { db in try String.fetchAll(db, sql: "PRAGMA quick_check(20)") }
        } catch {
            throw .storage("the database \(configuration.path) cannot be read (\(Self.map(error))): it is damaged or not a billingd database; restore it from a backup",
                           retryable: false)
        }
        guard damage == ["ok"] else {
            throw .storage("the database \(configuration.path) is damaged (\(damage.prefix(3).joined(separator: "; "))): billingd will not serve it; restore it from a backup",
                           retryable: false)
        }
        do {
            try Schema.migrator.migrate(pool)
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
            close(fd)
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

    public static let systemClock: @Sendable () -> Int64 = {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }

    // MARK: Transactions

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(BillingError) -> T {
        do {
            let result = try await pool.write(body)
            commits.committed()
            return result
        } catch {
            throw Self.map(error)
        }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(BillingError) -> T {
        do {
            return try await pool.read(body)
        } catch {
            throw Self.map(error)
        }
    }

    /// SQLite's extended code and message, never the statement's arguments.
    static func map(_ error: any Error) -> BillingError {
        if let billing = error as? BillingError { return billing }
        if let database = error as? DatabaseError {
            let busy = database.resultCode == .SQLITE_BUSY || database.resultCode == .SQLITE_LOCKED
            return .storage("SQLite error \(database.extendedResultCode.rawValue): \(database.message ?? "no message")", retryable: busy)
        }
        return .storage("\(type(of: error))", retryable: false)
    }

    /// `PRAGMA integrity_check` and `foreign_key_check`: "ok" or what is wrong.
    public func integrityCheck() async throws(BillingError) -> String {
        try await read { db in
            let integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            let foreign = try Row.fetchAll(db, sql: "PRAGMA foreign_key_check")
            if integrity == ["ok"] && foreign.isEmpty { return "ok" }
            return (integrity + foreign.map { "\($0)" }).joined(separator: "; ")
        }
    }

    /// Everything `integrityCheck` does, then the money's own invariants:
    /// each account's cached balance equals the sum of its ledger, and the
    /// event log (global and per account) has no gap. Returns the accounts
    /// checked and one line per problem (none when all is well).
    public func checkStorage() async throws(BillingError) -> (accounts: Int, problems: [String]) {
        let integrity = try await integrityCheck()
        return try await read { db in
            var problems = integrity == "ok" ? [] : ["SQLite: \(integrity.prefix(2000))"]
            let accounts = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM accounts") ?? 0
            let drifted = try Row.fetchAll(db, sql: """
                SELECT a.id, a.balance_minor, COALESCE(SUM(l.amount_minor), 0) AS ledger
                FROM accounts a LEFT JOIN ledger l ON l.account_id = a.id
                GROUP BY a.id HAVING a.balance_minor != COALESCE(SUM(l.amount_minor), 0) LIMIT 100
                """)
            problems += drifted.map { row in
                let id: String = row["id"], cached: Int64 = row["balance_minor"], ledger: Int64 = row["ledger"]
                return "account \(id): balance \(cached) but its ledger sums to \(ledger) (minor units)"
            }
            let (count, highest) = try Row.fetchOne(db, sql: "SELECT COUNT(*) AS n, COALESCE(MAX(sequence), 0) AS top FROM events")
                .map { ($0["n"] as Int64, $0["top"] as Int64) } ?? (0, 0)
            if count != highest { problems.append("the event log has \(count) events up to sequence \(highest): a gap") }
            let gapped = try String.fetchAll(db, sql: """
                SELECT account_id FROM events GROUP BY account_id HAVING COUNT(*) != MAX(account_sequence) LIMIT 100
                """)
            problems += gapped.map { "account \($0): its event sequence has a gap" }
            return (accounts, problems)
        }
    }

    // MARK: Accounts and payers

    /// Creates an account; the same id with the same fields returns it.
    public func createAccount(id: String, displayName: String, currency: Currency) async throws(BillingError) -> Account {
        try IDs.check(id, "account id")
        try Text.check(displayName, "display name", max: 200)
        try configuration.limits.checkAccountCurrency(currency)
        let now = clock()
        return try await write { db in
            if let existing = try Self.fetchAccount(db, id) {
                guard existing.displayName == displayName, existing.currency == currency else {
                    throw BillingError.alreadyExists("account \(id) exists with other fields")
                }
                return existing
            }
            try db.execute(
                sql: "INSERT INTO accounts (id, display_name, currency, created_at_ms) VALUES (?, ?, ?, ?)",
                arguments: [id, displayName, currency.code, now]
            )
            return Account(id: id, displayName: displayName, currency: currency, createdAtMs: now)
        }
    }

    public func account(_ id: String) async throws(BillingError) -> Account {
        try await read { db in try Self.requireAccount(db, id) }
    }

    public func createPayer(accountID: String, displayName: String, email: String) async throws(BillingError) -> Payer {
        try Text.check(displayName, "payer name", max: 200, required: true)
        try Text.check(email, "email", max: 254)
        let payer = Payer(id: IDs.make("pyr"), accountID: accountID, displayName: displayName, email: email, createdAtMs: clock())
        return try await write { db in
            _ = try Self.requireAccount(db, accountID)
            try db.execute(
                sql: "INSERT INTO payers (id, account_id, display_name, email, created_at_ms) VALUES (?, ?, ?, ?, ?)",
                arguments: [payer.id, payer.accountID, payer.displayName, payer.email, payer.createdAtMs]
            )
            return payer
        }
    }

    public func payers(accountID: String) async throws(BillingError) -> [Payer] {
        try await read { db in
            _ = try Self.requireAccount(db, accountID)
            return try Row.fetchAll(db, sql: "SELECT * FROM payers WHERE account_id = ? ORDER BY created_at_ms, id", arguments: [accountID])
                .map(Self.payer)
        }
    }

    public func payer(_ id: String) async throws(BillingError) -> Payer {
        try await read { db in try Self.requirePayer(db, id) }
    }

    // MARK: Balance and ledger

    /// The balance (the sum of the account's ledger) and the last event
    /// sequence it includes.
    public func balance(accountID: String) async throws(BillingError) -> (balance: Money, asOfSequence: UInt64) {
        try await read { db in
            let account = try Self.requireAccount(db, accountID)
            let cached = try Int64.fetchOne(db, sql: "SELECT balance_minor FROM accounts WHERE id = ?", arguments: [accountID]) ?? 0
            let sequence = try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(account_sequence), 0) FROM events WHERE account_id = ?",
                                              arguments: [accountID]) ?? 0
            return (Money(minorUnits: cached, account.currency), UInt64(sequence))
        }
    }

    /// The sum of the ledger, recomputed: tests compare it with `balance`.
    public func ledgerSum(accountID: String) async throws(BillingError) -> Int64 {
        try await read { db in
            try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(amount_minor), 0) FROM ledger WHERE account_id = ?", arguments: [accountID]) ?? 0
        }
    }

    /// How many credits a payment has: 1 once Paid, else 0 (reversals are
    /// entries of their own, not counted here).
    public func ledgerEntryCount(paymentID: String) async throws(BillingError) -> Int {
        try await read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM ledger WHERE entry_key = 'credit:' || ?", arguments: [paymentID]) ?? 0
        }
    }

    // MARK: Shared helpers (inside a transaction)

    static func fetchAccount(_ db: Database, _ id: String) throws -> Account? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM accounts WHERE id = ?", arguments: [id]) else { return nil }
        return Account(id: row["id"], displayName: row["display_name"], currency: try currency(row["currency"]), createdAtMs: row["created_at_ms"])
    }

    static func requireAccount(_ db: Database, _ id: String) throws -> Account {
        guard let account = try fetchAccount(db, id) else { throw BillingError.notFound("account \(id.prefix(64)) not found") }
        return account
    }

    static func requirePayer(_ db: Database, _ id: String) throws -> Payer {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM payers WHERE id = ?", arguments: [id]) else {
            throw BillingError.notFound("payer \(id.prefix(64)) not found")
        }
        return payer(row)
    }

    static func payer(_ row: Row) -> Payer {
        Payer(id: row["id"], accountID: row["account_id"], displayName: row["display_name"], email: row["email"], createdAtMs: row["created_at_ms"])
    }

    static func currency(_ code: String) throws -> Currency {
        do {
            return try Currency(code: code)
        } catch {
            throw BillingError.storage("stored currency \(code) is unknown to this build", retryable: false)
        }
    }

    /// Appends one event with the next sequence number.
    @discardableResult
    static func appendEvent(_ db: Database, accountID: String, atMs: Int64, _ change: Event.Change) throws -> UInt64 {
        let next = (try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(sequence), 0) + 1 FROM events") ?? 1)
        let nextOfAccount = (try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(account_sequence), 0) + 1 FROM events WHERE account_id = ?",
                                                arguments: [accountID]) ?? 1)
        let payload = String(decoding: try JSONEncoder().encode(change), as: UTF8.self)
        try db.execute(
            sql: "INSERT INTO events (sequence, account_sequence, account_id, at_ms, kind, payload) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [next, nextOfAccount, accountID, atMs, change.kind, payload]
        )
        return UInt64(next)
    }

    /// Appends a ledger entry under a unique key, updates the cached balance and
    /// appends the balance event. A second entry with the same key is refused
    /// by the schema; the caller's compare-and-set means it never tries.
    static func appendLedger(_ db: Database, account: Account, deltaMinor: Int64, entryKey: String, paymentID: String?, reference: String, atMs: Int64) throws {
        try db.execute(
            sql: """
                INSERT INTO ledger (account_id, amount_minor, currency, entry_key, payment_id, reference, created_at_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [account.id, deltaMinor, account.currency.code, entryKey, paymentID, reference, atMs]
        )
        let old = try Int64.fetchOne(db, sql: "SELECT balance_minor FROM accounts WHERE id = ?", arguments: [account.id]) ?? 0
        let (new, overflow) = old.addingReportingOverflow(deltaMinor)
        guard !overflow else { throw BillingError.failedPrecondition("balance would overflow") }
        try db.execute(sql: "UPDATE accounts SET balance_minor = ? WHERE id = ?", arguments: [new, account.id])
        try appendEvent(db, accountID: account.id, atMs: atMs, .balanceChanged(
            balance: Money(minorUnits: new, account.currency),
            delta: Money(minorUnits: deltaMinor, account.currency),
            paymentID: paymentID,
            reference: reference
        ))
    }
}

extension Event.Change {
    var kind: String {
        switch self {
        case .paymentStatusChanged: return "payment_status_changed"
        case .methodStatusChanged: return "method_status_changed"
        case .balanceChanged: return "balance_changed"
        case .notification: return "notification"
        case .paymentReversed: return "payment_reversed"
        }
    }
}
