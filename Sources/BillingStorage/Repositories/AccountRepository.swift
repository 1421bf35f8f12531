internal import BillingCore

/// Rows of `accounts` (with the cached balance) and `payers`, and the
/// payment systems' customers of payers. Everything here runs inside a
/// transaction the store opened.
enum AccountRepository {
    static func fetch(_ db: any SQLSession, _ id: String) throws -> Account? {
        guard
            let row = try db.row("SELECT * FROM accounts WHERE id = ?", [id])
        else {
            return nil
        }
        return Account(
            id: try row.get("id"),
            displayName: try row.get("display_name"),
            currency: try Rows.currency(try row.get("currency")),
            createdAtMs: try row.get("created_at_ms")
        )
    }

    static func require(_ db: any SQLSession, _ id: String) throws -> Account {
        guard let account = try fetch(db, id) else { throw BillingError.notFound("account \(id.prefix(64)) not found") }
        return account
    }

    /// The account's cached balance, what renewals awaiting payment hold of
    /// it and its latest event sequence, in one statement (one snapshot, no
    /// transaction needed); nil for no account.
    static func fundsAsOf(_ db: any SQLSession, _ accountID: String) throws -> (funds: Funds, asOfSequence: UInt64)? {
        guard
            let row = try db.row(
                """
                SELECT currency, balance_minor,
                    (SELECT COALESCE(SUM(from_balance_minor), 0) FROM renewal_orders
                        WHERE account_id = accounts.id AND status = 'awaiting_payment') AS held,
                    (SELECT COALESCE(MAX(account_sequence), 0) FROM events WHERE account_id = accounts.id) AS latest
                FROM accounts WHERE id = ?
                """,
                [accountID]
            )
        else { return nil }
        let latest: Int64 = try row.get("latest")
        let currency = try Rows.currency(try row.get("currency"))
        let funds = Funds(
            balance: Money(minorUnits: try row.get("balance_minor"), currency),
            held: Money(minorUnits: try row.get("held"), currency)
        )
        return (funds, UInt64(latest))
    }

    /// The balance and what renewals awaiting payment hold of it: what a
    /// decision that may debit reads.
    static func funds(_ db: any SQLSession, _ account: Account) throws -> Funds {
        let row = try db.row(
            """
            SELECT balance_minor, (SELECT COALESCE(SUM(from_balance_minor), 0) FROM renewal_orders
                WHERE account_id = accounts.id AND status = 'awaiting_payment') AS held
            FROM accounts WHERE id = ?
            """,
            [account.id]
        )
        return Funds(
            balance: Money(minorUnits: try row?.get("balance_minor") ?? 0, account.currency),
            held: Money(minorUnits: try row?.get("held") ?? 0, account.currency)
        )
    }

    /// The cached sum of the account's ledger.
    static func balance(_ db: any SQLSession, _ account: Account) throws -> Money {
        let cached =
            try db.value(Int64.self, "SELECT balance_minor FROM accounts WHERE id = ?", [account.id]) ?? 0
        return Money(minorUnits: cached, account.currency)
    }

    static func insert(_ db: any SQLSession, _ account: Account) throws {
        try db.execute(
            "INSERT INTO accounts (id, display_name, currency, created_at_ms) VALUES (?, ?, ?, ?)",
            [account.id, account.displayName, account.currency.code, account.createdAtMs]
        )
    }

    /// The balance moved by a ledger entry, as a compare-and-set on what it
    /// was decided from.
    static func moveBalance(_ db: any SQLSession, _ entry: LedgerEntry) throws {
        try db.execute(
            "UPDATE accounts SET balance_minor = ? WHERE id = ? AND balance_minor = ?",
            [entry.balanceAfter.amountMinorUnits, entry.accountID, entry.balanceBefore.amountMinorUnits]
        )
        try Rows.expectOneChange(db, "the balance of account \(entry.accountID)")
    }

    // MARK: Payers

    static func requirePayer(_ db: any SQLSession, _ id: String) throws -> Payer {
        guard let payer = try fetchPayer(db, id) else {
            throw BillingError.notFound("payer \(id.prefix(64)) not found")
        }
        return payer
    }

    static func fetchPayer(_ db: any SQLSession, _ id: String) throws -> Payer? {
        try db.row("SELECT * FROM payers WHERE id = ?", [id]).map(payer)
    }

    static func payers(_ db: any SQLSession, accountID: String) throws -> [Payer] {
        try db.rows("SELECT * FROM payers WHERE account_id = ? ORDER BY created_at_ms, id", [accountID]).map(payer)
    }

    static func insertPayer(_ db: any SQLSession, _ payer: Payer) throws {
        try db.execute(
            "INSERT INTO payers (id, account_id, display_name, email, created_at_ms) VALUES (?, ?, ?, ?, ?)",
            [payer.id, payer.accountID, payer.displayName, payer.email, payer.createdAtMs]
        )
    }

    private static func payer(_ row: SQLRow) throws -> Payer {
        Payer(
            id: try row.get("id"),
            accountID: try row.get("account_id"),
            displayName: try row.get("display_name"),
            email: try row.get("email"),
            createdAtMs: try row.get("created_at_ms")
        )
    }

    /// The payer's customer recorded at a payment system, and the references
    /// of its Confirmed methods there, newest first (for
    /// `SavedMethods.customer`).
    static func customer(
        _ db: any SQLSession,
        payerID: String,
        system: PaymentSystem
    ) throws -> (recorded: String?, methods: [String]) {
        let recorded = try db.value(
            String.self,
            "SELECT customer_reference FROM payer_customers WHERE payer_id = ? AND system = ?",
            [payerID, system.rawValue]
        )
        let methods =
            recorded != nil
            ? []
            : try db.values(
                String.self,
                """
                SELECT provider_reference FROM payment_methods WHERE payer_id = ? AND system = ? AND status = 'confirmed'
                ORDER BY updated_at_ms DESC LIMIT 20
                """,
                [payerID, system.rawValue]
            )
        return (recorded, methods)
    }

    /// The first customer recorded for a payer and system wins.
    static func insertCustomer(_ db: any SQLSession, payerID: String, system: PaymentSystem, reference: String) throws {
        try db.execute(
            "INSERT INTO payer_customers (payer_id, system, customer_reference) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [payerID, system.rawValue, reference]
        )
    }
}
