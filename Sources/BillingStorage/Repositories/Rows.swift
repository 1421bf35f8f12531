internal import BillingCore

/// What every repository shares: stored values read back strictly, and the
/// check that a compare-and-set found its row.
enum Rows {
    static func currency(_ code: String) throws -> Currency {
        do {
            return try Currency(code: code)
        } catch {
            throw BillingError.storage("stored currency \(code) is unknown to this build", retryable: false)
        }
    }

    /// A stored enum value; an unknown one is damage or a newer version's row.
    static func decode<T: RawRepresentable>(_ type: T.Type, _ row: SQLRow, _ column: String, table: String) throws -> T
    where T.RawValue == String {
        guard let value = T(rawValue: try row.get(column)) else {
            throw BillingError.storage("\(table).\(column) holds an unknown value", retryable: false)
        }
        return value
    }

    /// After a compare-and-set: exactly one row must have changed. Zero means
    /// the record moved since it was read, so the decision made on it is
    /// void; the whole transaction is refused and the caller may try again.
    static func expectOneChange(_ db: any SQLSession, _ what: @autoclosure () -> String) throws {
        guard db.changes == 1 else {
            throw BillingError.storage("\(what()) changed while this change was decided; try again", retryable: true)
        }
    }
}
