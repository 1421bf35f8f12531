internal import BillingCore
internal import GRDB

/// Rows of `accounts` (with the cached balance) and `payers`, and the
/// payment systems' customers of payers. Everything here runs inside a
/// transaction the store opened.
enum AccountRepository {
    static func fetch(_ db: Database, _ id: String) throws -> Account? {
        guard
            let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM accounts WHERE id = ?"), arguments: [id])
        else {
            return nil
        }
        return Account(
            id: row["id"],
            displayName: row["display_name"],
            currency: try Rows.currency(row["currency"]),
            createdAtMs: row["created_at_ms"]
        )
    }

    static func require(_ db: Database, _ id: String) throws -> Account {
        guard let account = try fetch(db, id) else { throw BillingError.notFound("account \(id.prefix(64)) not found") }
        return account
    }

    /// The account's cached balance, what renewals awaiting payment hold of
    /// it and its latest event sequence, in one statement (one snapshot, no
    /// transaction needed); nil for no account.
    static func fundsAsOf(_ db: Database, _ accountID: String) throws -> (funds: Funds, asOfSequence: UInt64)? {
        guard
            let row = try Row.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT currency, balance_minor,
                            (SELECT COALESCE(SUM(from_balance_minor), 0) FROM renewal_orders
                                WHERE account_id = accounts.id AND status = 'awaiting_payment') AS held,
                            (SELECT COALESCE(MAX(account_sequence), 0) FROM events WHERE account_id = accounts.id) AS latest
                        FROM accounts WHERE id = ?
                        """
                ),
                arguments: [accountID]
            )
        else { return nil }
        let latest: Int64 = row["latest"]
        let currency = try Rows.currency(row["currency"])
        let funds = Funds(
            balance: Money(minorUnits: row["balance_minor"], currency),
            held: Money(minorUnits: row["held"], currency)
        )
        return (funds, UInt64(latest))
    }

    /// The balance and what renewals awaiting payment hold of it: what a
    /// decision that may debit reads.
    static func funds(_ db: Database, _ account: Account) throws -> Funds {
        let row = try Row.fetchOne(
            db.cachedStatement(
                sql: """
                    SELECT balance_minor, (SELECT COALESCE(SUM(from_balance_minor), 0) FROM renewal_orders
                        WHERE account_id = accounts.id AND status = 'awaiting_payment') AS held
                    FROM accounts WHERE id = ?
                    """
            ),
            arguments: [account.id]
        )
        return Funds(
            balance: Money(minorUnits: row?["balance_minor"] ?? 0, account.currency),
            held: Money(minorUnits: row?["held"] ?? 0, account.currency)
        )
    }

    /// The cached sum of the account's ledger.
    static func balance(_ db: Database, _ account: Account) throws -> Money {
        let cached =
            try Int64.fetchOne(
                db.cachedStatement(sql: "SELECT balance_minor FROM accounts WHERE id = ?"),
                arguments: [account.id]
            ) ?? 0
        return Money(minorUnits: cached, account.currency)
    }

    static func insert(_ db: Database, _ account: Account) throws {
        try db.cachedStatement(
            sql: "INSERT INTO accounts (id, display_name, currency, created_at_ms) VALUES (?, ?, ?, ?)"
        ).execute(arguments: [account.id, account.displayName, account.currency.code, account.createdAtMs]
        )
    }

    /// The balance moved by a ledger entry, as a compare-and-set on what it
    /// was decided from.
    static func moveBalance(_ db: Database, _ entry: LedgerEntry) throws {
        try db.cachedStatement(sql: "UPDATE accounts SET balance_minor = ? WHERE id = ? AND balance_minor = ?").execute(
            arguments: [entry.balanceAfter.amountMinorUnits, entry.accountID, entry.balanceBefore.amountMinorUnits]
        )
        try Rows.expectOneChange(db, "the balance of account \(entry.accountID)")
    }

    // MARK: Payers

    static func requirePayer(_ db: Database, _ id: String) throws -> Payer {
        guard let payer = try fetchPayer(db, id) else {
            throw BillingError.notFound("payer \(id.prefix(64)) not found")
        }
        return payer
    }

    static func fetchPayer(_ db: Database, _ id: String) throws -> Payer? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM payers WHERE id = ?"), arguments: [id]).map(payer)
    }

    static func payers(_ db: Database, accountID: String) throws -> [Payer] {
        try Row.fetchAll(
            db.cachedStatement(sql: "SELECT * FROM payers WHERE account_id = ? ORDER BY created_at_ms, id"),
            arguments: [accountID]
        ).map(payer)
    }

    static func insertPayer(_ db: Database, _ payer: Payer) throws {
        try db.cachedStatement(
            sql: "INSERT INTO payers (id, account_id, display_name, email, created_at_ms) VALUES (?, ?, ?, ?, ?)"
        ).execute(arguments: [payer.id, payer.accountID, payer.displayName, payer.email, payer.createdAtMs]
        )
    }

    private static func payer(_ row: Row) -> Payer {
        Payer(
            id: row["id"],
            accountID: row["account_id"],
            displayName: row["display_name"],
            email: row["email"],
            createdAtMs: row["created_at_ms"]
        )
    }

    /// The payer's customer recorded at a payment system, and the references
    /// of its Confirmed methods there, newest first (for
    /// `SavedMethods.customer`).
    static func customer(
        _ db: Database,
        payerID: String,
        system: PaymentSystem
    ) throws -> (recorded: String?, methods: [String]) {
        let recorded = try String.fetchOne(
            db.cachedStatement(sql: "SELECT customer_reference FROM payer_customers WHERE payer_id = ? AND system = ?"),
            arguments: [payerID, system.rawValue]
        )
        let methods =
            recorded != nil
            ? []
            : try String.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT provider_reference FROM payment_methods WHERE payer_id = ? AND system = ? AND status = 'confirmed'
                        ORDER BY updated_at_ms DESC LIMIT 20
                        """
                ),
                arguments: [payerID, system.rawValue]
            )
        return (recorded, methods)
    }

    /// The first customer recorded for a payer and system wins.
    static func insertCustomer(_ db: Database, payerID: String, system: PaymentSystem, reference: String) throws {
        try db.cachedStatement(
            sql: "INSERT OR IGNORE INTO payer_customers (payer_id, system, customer_reference) VALUES (?, ?, ?)"
        ).execute(arguments: [payerID, system.rawValue, reference]
        )
    }
}
