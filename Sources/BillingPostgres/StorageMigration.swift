public import BillingCore
public import BillingStorage

/// Moving a shop from SQLite to PostgreSQL: every row of every table copied
/// from one read snapshot of the SQLite file into an empty PostgreSQL
/// database, in one transaction, with ids, sequences, ledger keys and
/// idempotency records as they were; then checked.
///
/// Refused (nothing written) when the PostgreSQL database already holds
/// anything. Checked after the copy: every table's row count, every
/// account's ledger sum and balance, the event log gap-free and ending at
/// the same sequence. A check that fails leaves the copy committed but says
/// so: empty the database (drop and create it) before trying again.
public enum StorageMigration {
    public struct Report: Sendable, CustomStringConvertible {
        /// Rows copied, per table.
        public var rows: [(table: String, count: Int)]
        public var accounts: Int
        public var latestSequence: UInt64
        /// The sum of every ledger entry, per currency (minor units).
        public var ledgerTotals: [String: Int64]

        public var description: String {
            let tables = rows.filter { $0.count > 0 }.map { "\($0.table) \($0.count)" }.joined(separator: ", ")
            let totals = ledgerTotals.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            return
                "copied and checked: \(accounts) accounts, events up to \(latestSequence); rows: \(tables.isEmpty ? "none" : tables); ledger totals (minor units): \(totals.isEmpty ? "none" : totals)"
        }
    }

    /// Rows per INSERT: well under PostgreSQL's 65,535 parameters.
    static let rowsPerInsert = 200

    public static func copy(from source: SQLiteStore, to target: PostgresStore) async throws(BillingError) -> Report {
        let tables = PostgresSchema.tables
        let snapshot = try await source.read { db in
            try tables.map { table in
                // renewal_lines keeps SQLite's row order (PostgreSQL names the column rowid too).
                let select =
                    table == "renewal_lines" ? "SELECT rowid AS rowid, * FROM \(table)" : "SELECT * FROM \(table)"
                return (table: table, rows: try db.rows(select))
            }
        }
        let expected = try await source.read { db in try Self.figures(db) }
        try await target.write { db in
            let present = try tables.filter { table in
                try db.value(Int64.self, "SELECT COUNT(*) FROM (SELECT 1 FROM \(table) LIMIT 1) AS any_row") ?? 0 > 0
            }
            guard present.isEmpty else {
                throw BillingError.failedPrecondition(
                    "the PostgreSQL database is not empty (\(present.prefix(5).joined(separator: ", ")) have rows): the copy writes only into an empty one"
                )
            }
            for (table, rows) in snapshot where !rows.isEmpty {
                let columns = rows[0].columns
                let row = "(" + columns.map { _ in "?" }.joined(separator: ", ") + ")"
                var start = 0
                while start < rows.count {
                    let chunk = rows[start..<min(start + rowsPerInsert, rows.count)]
                    try db.execute(
                        "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES "
                            + chunk.map { _ in row }.joined(separator: ", "),
                        chunk.flatMap(\.values)
                    )
                    start += rowsPerInsert
                }
            }
            // Identity columns continue after the copied ids.
            for (table, column) in [("ledger", "id"), ("audit_log", "id"), ("renewal_lines", "rowid")] {
                try db.execute(
                    "SELECT setval(pg_get_serial_sequence('\(table)', '\(column)'), COALESCE(MAX(\(column)), 0) + 1, false) FROM \(table)"
                )
            }
        }
        let copied = try await target.read { db in try Self.figures(db) }
        var problems: [String] = []
        for (table, count) in expected.rows {
            let found = copied.rows.first { $0.table == table }?.count ?? -1
            if found != count { problems.append("\(table): \(count) rows in SQLite, \(found) in PostgreSQL") }
        }
        if copied.balances != expected.balances {
            problems.append("the accounts' balances or ledger sums differ between SQLite and PostgreSQL")
        }
        if copied.latestSequence != expected.latestSequence {
            problems.append(
                "events end at \(expected.latestSequence) in SQLite, \(copied.latestSequence) in PostgreSQL"
            )
        }
        problems += copied.invariantProblems
        guard problems.isEmpty else {
            throw .storage(
                "the copy does not check out: \(problems.prefix(5).joined(separator: "; ")); drop and create the PostgreSQL database before trying again",
                retryable: false
            )
        }
        return Report(
            rows: copied.rows,
            accounts: copied.accounts,
            latestSequence: copied.latestSequence,
            ledgerTotals: copied.ledgerTotals
        )
    }

    private struct Figures: Sendable {
        var rows: [(table: String, count: Int)]
        var accounts: Int
        var balances: [String: [Int64]]
        var ledgerTotals: [String: Int64]
        var latestSequence: UInt64
        var invariantProblems: [String]
    }

    /// What both sides must agree on, read in one snapshot.
    private static func figures(_ db: any SQLSession) throws -> Figures {
        let rows = try PostgresSchema.tables.map { table in
            (table: table, count: try db.value(Int.self, "SELECT COUNT(*) FROM \(table)") ?? 0)
        }
        var balances: [String: [Int64]] = [:]
        for row in try db.rows(
            """
            SELECT a.id, a.balance_minor, COALESCE(SUM(l.amount_minor), 0) AS ledger, COUNT(l.id) AS entries
            FROM accounts a LEFT JOIN ledger l ON l.account_id = a.id GROUP BY a.id, a.balance_minor
            """
        ) {
            balances[try row.get("id")] = [try row.get("balance_minor"), try row.get("ledger"), try row.get("entries")]
        }
        var totals: [String: Int64] = [:]
        for row in try db.rows("SELECT currency, COALESCE(SUM(amount_minor), 0) AS total FROM ledger GROUP BY currency")
        {
            totals[try row.get("currency")] = try row.get("total")
        }
        let latest = try db.value(Int64.self, "SELECT COALESCE(MAX(sequence), 0) FROM events") ?? 0
        let (accounts, problems) = try Invariants.check(db)
        return Figures(
            rows: rows,
            accounts: accounts,
            balances: balances,
            ledgerTotals: totals,
            latestSequence: UInt64(latest),
            invariantProblems: problems
        )
    }
}
