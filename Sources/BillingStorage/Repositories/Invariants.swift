internal import BillingCore

/// The money's own invariants, checked on demand (`checkStorage`, backups,
/// the storage migration): each account's cached balance equals the sum of
/// its ledger, and the event log (global and per account) has no gap.
package enum Invariants {
    /// The accounts checked and one line per problem (none when all is well).
    package static func check(_ db: any SQLSession) throws -> (accounts: Int, problems: [String]) {
        var problems: [String] = []
        let accounts = try db.value(Int.self, "SELECT COUNT(*) FROM accounts") ?? 0
        let drifted = try db.rows(
            """
            SELECT a.id, a.balance_minor, COALESCE(SUM(l.amount_minor), 0) AS ledger
            FROM accounts a LEFT JOIN ledger l ON l.account_id = a.id
            GROUP BY a.id, a.balance_minor HAVING a.balance_minor != COALESCE(SUM(l.amount_minor), 0) LIMIT 100
            """
        )
        problems += try drifted.map { row in
            let id: String = try row.get("id")
            let cached: Int64 = try row.get("balance_minor")
            let ledger: Int64 = try row.get("ledger")
            return "account \(id): balance \(cached) but its ledger sums to \(ledger) (minor units)"
        }
        let totals = try db.row("SELECT COUNT(*) AS n, COALESCE(MAX(sequence), 0) AS top FROM events")
        let count: Int64 = try totals?.get("n") ?? 0
        let highest: Int64 = try totals?.get("top") ?? 0
        if count != highest {
            problems.append("the event log has \(count) events up to sequence \(highest): a gap")
        }
        let gapped = try db.values(
            String.self,
            "SELECT account_id FROM events GROUP BY account_id HAVING COUNT(*) != MAX(account_sequence) LIMIT 100"
        )
        problems += gapped.map { "account \($0): its event sequence has a gap" }
        return (accounts, problems)
    }
}
