internal import GRDB

/// An `SQLSession` on a GRDB connection, inside a transaction GRDB opened.
/// Statements are prepared once per connection (`cachedStatement`).
final class SQLiteSession: SQLSession {
    private let db: Database

    init(_ db: Database) {
        self.db = db
    }

    var changes: Int { db.changesCount }

    @discardableResult
    func execute(_ sql: String, _ arguments: [any SQLArgument]) throws -> Int {
        try db.cachedStatement(sql: sql).execute(arguments: Self.arguments(arguments))
        return db.changesCount
    }

    func rows(_ sql: String, _ arguments: [any SQLArgument]) throws -> [SQLRow] {
        let statement = try db.cachedStatement(sql: sql)
        let columns = statement.columnNames
        return try Row.fetchAll(statement, arguments: Self.arguments(arguments)).map { row in
            SQLRow(
                columns: columns,
                values: row.databaseValues.map { value in
                    switch value.storage {
                    case .null: return .null
                    case .int64(let integer): return .integer(integer)
                    case .string(let text): return .text(text)
                    case .double(let real):
                        // Never stored by billingd (no floating point money); read as damage.
                        return .text("\(real)")
                    case .blob: return .text("<blob>")
                    }
                }
            )
        }
    }

    private static func arguments(_ values: [any SQLArgument]) -> StatementArguments {
        StatementArguments(
            values.map { value -> (any DatabaseValueConvertible)? in
                switch value.sqlValue {
                case .null: return nil
                case .integer(let integer): return integer
                case .text(let text): return text
                }
            }
        )
    }
}
