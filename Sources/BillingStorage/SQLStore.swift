public import BillingCore

/// A `BillingStore` on a SQL database: what an engine supplies (transactions
/// on its connections) for the one implementation of every `BillingStore`
/// method (`Store+*.swift`), shared by `SQLiteStore` and `PostgresStore`.
///
/// An engine gives each transaction an `SQLSession` on a thread of its own.
/// A write transaction must behave as if it were the only writer: it sees
/// every write committed before it and none made after it began (SQLite has
/// one writer; PostgreSQL's store takes one lock for its writes), which is
/// what makes the event log's `MAX + 1` numbering gap-free and commit-ordered.
public protocol SQLStore: BillingStore {
    var configuration: StorageConfiguration { get }
    var clock: any BillingClock { get }
    var observer: StoreObserver? { get }

    /// One write transaction, committed before it returns.
    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws(BillingError) -> T
    /// One read transaction (one snapshot).
    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws(BillingError) -> T
    /// A read of ONE statement, as cheaply as the engine can (its own snapshot).
    func readNow<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws(BillingError) -> T
}

extension SQLStore {
    /// Reads what a decision needs, decides and writes its effects, in one
    /// write transaction: the decision sees the records as they are when
    /// its effects are written. `now` is read once, before.
    func decide<T: Sendable>(
        _ body: @escaping @Sendable (any SQLSession, Int64) throws -> Change<T>
    ) async throws(BillingError) -> T {
        let now = clock.nowMs
        let audit = Audit.actor
        let change = try await write { db in
            let change = try body(db, now)
            try UnitOfWork.apply(change.effects + Audit.entries(change.effects, by: audit, atMs: now), db)
            return change
        }
        observer?.committed(change.effects)
        return change.result
    }
}

extension SQLStore {
    /// A transaction timed for the observer (succeeded or not), its error
    /// turned into a `BillingError` by the engine's `map`: what every
    /// engine's `write` and `read` wrap themselves in.
    package func observed<T>(
        _ kind: StoreObserver.Kind,
        mapping map: (any Error) -> BillingError,
        _ body: () async throws -> T
    ) async throws(BillingError) -> T {
        let started = ContinuousClock.now
        do {
            let result = try await body()
            observer?.transactionEnded(kind, ContinuousClock.now - started, true)
            return result
        } catch {
            observer?.transactionEnded(kind, ContinuousClock.now - started, false)
            throw map(error)
        }
    }
}
