internal import BillingStorage
internal import Foundation
internal import Logging
internal import NIOCore
internal import PostgresNIO
internal import Synchronization

/// An `SQLSession` on one PostgreSQL connection. Each statement is sent and
/// its answer awaited on the calling thread, which is one of the store's own
/// (`NIOThreadPool`), never an event loop or the cooperative pool: the
/// repositories are synchronous, as they are on SQLite.
///
/// `?` placeholders become `$1, $2, …`; integers are sent as int8, text as
/// text, NULL untyped. Integers, booleans and NUMERIC (what SUM of a
/// bigint gives) read back as integers, text as text.
final class PostgresSession: SQLSession {
    let connection: PostgresConnection
    private let logger: Logger
    /// How long an answer may take before the connection is given up as
    /// broken: the server's statement timeout plus a margin. A server that
    /// went away without a word (a failover, a killed backend, a cut
    /// network) never answers; the caller gets a retryable error instead of
    /// waiting for ever.
    private let answerTimeout: TimeAmount
    private(set) var changes = 0

    init(_ connection: PostgresConnection, logger: Logger, answerTimeout: Duration = .seconds(40)) {
        self.connection = connection
        self.logger = logger
        self.answerTimeout = .milliseconds(answerTimeout.milliseconds)
    }

    @discardableResult
    func execute(_ sql: String, _ arguments: [any SQLArgument]) throws -> Int {
        let result = try run(sql, arguments)
        changes = result.metadata.rows ?? 0
        return changes
    }

    func rows(_ sql: String, _ arguments: [any SQLArgument]) throws -> [SQLRow] {
        try run(sql, arguments).rows.map(Self.row)
    }

    /// `body` between `begin` and COMMIT; rolled back when it throws.
    func transaction<T>(_ begin: String = "BEGIN", _ body: () throws -> T) throws -> T {
        try execute(begin)
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            _ = try? execute("ROLLBACK")
            throw error
        }
    }

    private func run(_ sql: String, _ arguments: [any SQLArgument]) throws -> PostgresQueryResult {
        var binds = PostgresBindings(capacity: arguments.count)
        for argument in arguments {
            switch argument.sqlValue {
            case .null: binds.appendNull()
            case .integer(let integer): binds.append(integer)
            case .text(let text): binds.append(text)
            }
        }
        let query = PostgresQuery(unsafeSQL: Placeholders.numbered(sql), binds: binds)
        guard !connection.isClosed else { throw PostgresFailure(lost: "the connection was closed") }
        let eventLoop = connection.eventLoop
        let answer = eventLoop.makePromise(of: PostgresQueryResult.self)
        let timeout = answerTimeout
        let timer = eventLoop.scheduleTask(in: timeout) {
            answer.fail(PostgresFailure(lost: "no answer within \(timeout.nanoseconds / 1_000_000_000) s"))
        }
        connection.query(query, logger: logger).whenComplete { result in
            timer.cancel()
            answer.completeWith(result)
        }
        do {
            return try answer.futureResult.wait()
        } catch {
            let failure = PostgresFailure(error)
            // A connection that stopped answering is closed: its pool drops it.
            if failure.connectionLost { _ = connection.close() as EventLoopFuture<Void> }
            throw failure
        }
    }

    private static func row(_ row: PostgresRow) throws -> SQLRow {
        var columns: [String] = []
        var values: [SQLValue] = []
        columns.reserveCapacity(row.count)
        values.reserveCapacity(row.count)
        for cell in row {
            columns.append(cell.columnName)
            values.append(try value(cell))
        }
        return SQLRow(columns: columns, values: values)
    }

    private static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        do {
            switch cell.dataType {
            case .int2, .int4, .int8:
                return .integer(try cell.decode(Int64.self))
            case .bool:
                return .integer(try cell.decode(Bool.self) ? 1 : 0)
            case .numeric:
                let decimal = try cell.decode(Decimal.self)
                guard let integer = Int64("\(decimal)") else {
                    throw PostgresFailure(message: "column \(cell.columnName) holds a number that is not an integer")
                }
                return .integer(integer)
            case .text, .varchar, .name, .bpchar:
                return .text(try cell.decode(String.self))
            default:
                throw PostgresFailure(message: "column \(cell.columnName) has a type billingd does not store")
            }
        } catch let failure as PostgresFailure {
            throw failure
        } catch {
            throw PostgresFailure(message: "column \(cell.columnName) could not be read")
        }
    }
}

/// `?` → `$n`, outside quoted literals and identifiers; each statement's
/// text converted once.
enum Placeholders {
    private static let converted = Mutex<[String: String]>([:])

    static func numbered(_ sql: String) -> String {
        if let known = converted.withLock({ $0[sql] }) { return known }
        var out = ""
        out.reserveCapacity(sql.utf8.count + 16)
        var quote: Character?
        var number = 0
        for character in sql {
            if let open = quote {
                if character == open { quote = nil }
                out.append(character)
            } else if character == "'" || character == "\"" {
                quote = character
                out.append(character)
            } else if character == "?" {
                number += 1
                out += "$\(number)"
            } else {
                out.append(character)
            }
        }
        converted.withLock { cache in
            if cache.count > 4096 { cache.removeAll() }
            cache[sql] = out
        }
        return out
    }
}

/// What went wrong talking to PostgreSQL: the server's SQLSTATE and primary
/// message (never a statement's arguments), or that the connection failed.
struct PostgresFailure: Error, CustomStringConvertible {
    /// The server's code ("40001", "23505", …); nil when no server answered.
    var sqlState: String?
    var message: String
    /// The connection broke: nothing more can be sent on it.
    var connectionLost: Bool

    init(message: String) {
        self.sqlState = nil
        self.message = message
        self.connectionLost = false
    }

    init(lost message: String) {
        self.sqlState = nil
        self.message = message
        self.connectionLost = true
    }

    init(_ error: any Error) {
        if let failure = error as? PostgresFailure {
            self = failure
        } else if let psql = error as? PSQLError {
            if psql.code == .server {
                sqlState = psql.serverInfo?[.sqlState]
                message = psql.serverInfo?[.message] ?? "no message"
                connectionLost = false
            } else {
                sqlState = nil
                // The reason below ("No such file or directory", "Connection refused", …).
                message = "\(psql.code)" + (psql.underlying.map { ": \($0)" } ?? "")
                connectionLost = true
            }
        } else {
            sqlState = nil
            message = "\(type(of: error))"
            connectionLost = true
        }
    }

    /// Another transaction got in the way (serialization failure or
    /// deadlock): the work may simply run again.
    var isConflict: Bool { sqlState == "40001" || sqlState == "40P01" }

    var description: String {
        if let sqlState { return "PostgreSQL error \(sqlState): \(message)" }
        return connectionLost ? "PostgreSQL connection failed: \(message)" : "PostgreSQL: \(message)"
    }
}
