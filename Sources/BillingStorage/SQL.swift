internal import BillingCore

/// One transaction's connection, whatever the engine: what the repositories
/// and the unit of work write their SQL to. `SQLiteStore` gives them a GRDB
/// `Database`, `PostgresStore` a PostgreSQL connection; the statements are
/// the same (the common dialect of both: `?` placeholders, `ON CONFLICT`,
/// `RETURNING`, no engine-only functions).
///
/// Every call runs synchronously inside a transaction the store opened, on
/// a thread of the store's own (never an event loop, never the cooperative
/// pool).
public protocol SQLSession: AnyObject {
    /// Runs a statement; returns how many rows it changed.
    @discardableResult
    func execute(_ sql: String, _ arguments: [any SQLArgument]) throws -> Int
    /// Runs a query; returns every row.
    func rows(_ sql: String, _ arguments: [any SQLArgument]) throws -> [SQLRow]
    /// How many rows the last statement run by `execute` changed.
    var changes: Int { get }
}

extension SQLSession {
    @discardableResult
    public func execute(_ sql: String) throws -> Int { try execute(sql, []) }

    public func rows(_ sql: String) throws -> [SQLRow] { try rows(sql, []) }

    /// The first row, if any.
    public func row(_ sql: String, _ arguments: [any SQLArgument] = []) throws -> SQLRow? {
        try rows(sql, arguments).first
    }

    /// The first column of the first row; nil for no row or NULL.
    public func value<T: SQLColumn>(
        _ type: T.Type,
        _ sql: String,
        _ arguments: [any SQLArgument] = []
    ) throws -> T? {
        guard let row = try row(sql, arguments) else { return nil }
        return try T?.decode(row.values[0], column: row.columns[0])
    }

    /// The first column of every row.
    public func values<T: SQLColumn>(
        _ type: T.Type,
        _ sql: String,
        _ arguments: [any SQLArgument] = []
    ) throws -> [T] {
        try rows(sql, arguments).map { row in try T.decode(row.values[0], column: row.columns[0]) }
    }
}

/// A value as both engines store it: integers (money, times, counts,
/// booleans as 0/1), text (ids, statuses, JSON), or NULL.
public enum SQLValue: Sendable, Hashable, SQLArgument {
    case null
    case integer(Int64)
    case text(String)

    public var sqlValue: SQLValue { self }
}

/// What a statement may be given as an argument.
public protocol SQLArgument: Sendable {
    var sqlValue: SQLValue { get }
}

extension String: SQLArgument {
    public var sqlValue: SQLValue { .text(self) }
}

extension Int64: SQLArgument {
    public var sqlValue: SQLValue { .integer(self) }
}

extension Int: SQLArgument {
    public var sqlValue: SQLValue { .integer(Int64(self)) }
}

extension Bool: SQLArgument {
    public var sqlValue: SQLValue { .integer(self ? 1 : 0) }
}

extension Optional: SQLArgument where Wrapped: SQLArgument {
    public var sqlValue: SQLValue { self?.sqlValue ?? .null }
}

/// A type a column is read as. A stored value of another type is damage
/// (or a newer version's row): an error for the call that read it.
public protocol SQLColumn {
    static func decode(_ value: SQLValue, column: String) throws -> Self
}

extension SQLColumn {
    static func mismatch(_ value: SQLValue, _ column: String) -> BillingError {
        let found: String
        switch value {
        case .null: found = "NULL"
        case .integer: found = "an integer"
        case .text: found = "text"
        }
        return .storage("column \(column) holds \(found), not \(Self.self)", retryable: false)
    }
}

extension String: SQLColumn {
    public static func decode(_ value: SQLValue, column: String) throws -> String {
        guard case .text(let text) = value else { throw mismatch(value, column) }
        return text
    }
}

extension Int64: SQLColumn {
    public static func decode(_ value: SQLValue, column: String) throws -> Int64 {
        guard case .integer(let integer) = value else { throw mismatch(value, column) }
        return integer
    }
}

extension Int: SQLColumn {
    public static func decode(_ value: SQLValue, column: String) throws -> Int {
        guard case .integer(let integer) = value, let int = Int(exactly: integer) else { throw mismatch(value, column) }
        return int
    }
}

extension Bool: SQLColumn {
    public static func decode(_ value: SQLValue, column: String) throws -> Bool {
        guard case .integer(let integer) = value else { throw mismatch(value, column) }
        return integer != 0
    }
}

extension Optional: SQLColumn where Wrapped: SQLColumn {
    public static func decode(_ value: SQLValue, column: String) throws -> Wrapped? {
        if case .null = value { return nil }
        return try Wrapped.decode(value, column: column)
    }
}

/// One row of a result: its columns by name (as the statement named them)
/// or position.
public struct SQLRow: Sendable {
    public let columns: [String]
    public let values: [SQLValue]

    public init(columns: [String], values: [SQLValue]) {
        self.columns = columns
        self.values = values
    }

    /// The column `name` read as `T`.
    public func get<T: SQLColumn>(_ name: String, as type: T.Type = T.self) throws -> T {
        guard let index = columns.firstIndex(of: name) else {
            throw BillingError.storage("the result has no column \(name)", retryable: false)
        }
        return try T.decode(values[index], column: name)
    }

    /// The column at `index` read as `T`.
    public func get<T: SQLColumn>(at index: Int, as type: T.Type = T.self) throws -> T {
        guard values.indices.contains(index) else {
            throw BillingError.storage("the result has no column \(index)", retryable: false)
        }
        return try T.decode(values[index], column: columns[index])
    }
}
