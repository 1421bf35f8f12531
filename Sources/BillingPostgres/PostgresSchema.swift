/// The PostgreSQL schema, as versioned migrations that run at open (under a
/// lock, so instances starting together migrate once). Never edit a
/// registered migration: add the next.
///
/// The tables, columns and constraints are SQLite's (`BillingStorage.Schema`
/// after its v11), in PostgreSQL's types: every integer is BIGINT (money in
/// minor units, times in ms), text is TEXT. What the schema guarantees is
/// the same: one ledger entry per key, one default method per payer, one
/// idempotency record per (account, operation, key), one non-cancelled
/// automatic order per (service, period), statuses only the domain's, and
/// the ledger, event log, audit trail and invoices append-only (triggers
/// refuse UPDATE, DELETE and TRUNCATE).
enum PostgresSchema {
    static let migrations: [(version: String, statements: [String])] = [("v1", v1)]

    static let v1: [String] =
        [
            """
            CREATE FUNCTION billingd_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
            END
            $$
            """,
            """
            CREATE TABLE accounts (
                id TEXT PRIMARY KEY NOT NULL,
                display_name TEXT NOT NULL,
                currency TEXT NOT NULL,
                -- A cache of SUM(ledger.amount_minor), updated in the same transaction.
                balance_minor BIGINT NOT NULL DEFAULT 0,
                created_at_ms BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE payers (
                id TEXT PRIMARY KEY NOT NULL,
                account_id TEXT NOT NULL REFERENCES accounts(id),
                display_name TEXT NOT NULL,
                email TEXT NOT NULL,
                created_at_ms BIGINT NOT NULL
            )
            """,
            "CREATE INDEX payers_by_account ON payers(account_id)",
            """
            CREATE TABLE payer_customers (
                payer_id TEXT NOT NULL REFERENCES payers(id),
                system TEXT NOT NULL,
                customer_reference TEXT NOT NULL,
                PRIMARY KEY (payer_id, system)
            )
            """,
            """
            CREATE TABLE payment_methods (
                id TEXT PRIMARY KEY NOT NULL,
                payer_id TEXT NOT NULL REFERENCES payers(id),
                system TEXT NOT NULL CHECK (system IN ('stripe', 'paypal', 'sandbox')),
                status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'failed', 'removed')),
                is_default BIGINT NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
                display_name TEXT NOT NULL,
                provider_reference TEXT NOT NULL DEFAULT '',
                saved_with_payment_id TEXT NOT NULL,
                created_at_ms BIGINT NOT NULL,
                updated_at_ms BIGINT NOT NULL,
                CHECK (is_default = 0 OR status = 'confirmed')
            )
            """,
            "CREATE UNIQUE INDEX one_default_method_per_payer ON payment_methods(payer_id) WHERE is_default = 1",
            """
            CREATE TABLE payments (
                id TEXT PRIMARY KEY NOT NULL,
                account_id TEXT NOT NULL REFERENCES accounts(id),
                payer_id TEXT NOT NULL REFERENCES payers(id),
                purpose TEXT NOT NULL CHECK (purpose IN ('top_up', 'renewal', 'migration')),
                amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
                currency TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('new', 'paid', 'cancelled')),
                option_kind TEXT NOT NULL CHECK (option_kind IN ('invoice', 'saved_method', 'payment_system')),
                system TEXT,
                payment_method_id TEXT REFERENCES payment_methods(id),
                saved_payment_method_id TEXT REFERENCES payment_methods(id),
                provider_reference TEXT NOT NULL DEFAULT '',
                redirect_url TEXT NOT NULL DEFAULT '',
                return_url TEXT NOT NULL DEFAULT '',
                invoice_number TEXT UNIQUE,
                failure_reason TEXT NOT NULL DEFAULT '',
                renewal_order_id TEXT,
                migration_order_id TEXT,
                created_at_ms BIGINT NOT NULL,
                updated_at_ms BIGINT NOT NULL,
                finished_at_ms BIGINT,
                next_check_at_ms BIGINT,
                check_attempts BIGINT NOT NULL DEFAULT 0,
                -- The poller's claim: which instance checks it and until when.
                lease_owner TEXT,
                lease_until_ms BIGINT,
                CHECK ((status = 'new') = (finished_at_ms IS NULL))
            )
            """,
            "CREATE INDEX payments_history ON payments(account_id, created_at_ms DESC, id DESC)",
            "CREATE INDEX payments_due ON payments(next_check_at_ms) WHERE status = 'new'",
            "CREATE INDEX payments_by_provider_reference ON payments(provider_reference)",
            """
            CREATE TABLE ledger (
                id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                account_id TEXT NOT NULL REFERENCES accounts(id),
                -- Signed: credits positive, debits negative.
                amount_minor BIGINT NOT NULL CHECK (amount_minor != 0),
                currency TEXT NOT NULL,
                entry_key TEXT NOT NULL UNIQUE,
                payment_id TEXT REFERENCES payments(id),
                reference TEXT NOT NULL,
                created_at_ms BIGINT NOT NULL
            )
            """,
            "CREATE INDEX ledger_by_account ON ledger(account_id)",
            "CREATE INDEX ledger_by_payment ON ledger(payment_id)",
            """
            CREATE TABLE events (
                -- MAX + 1 inside the writing transaction, which holds the store's
                -- write lock: commit order is sequence order, with no gap.
                sequence BIGINT PRIMARY KEY,
                account_sequence BIGINT NOT NULL,
                account_id TEXT NOT NULL,
                at_ms BIGINT NOT NULL,
                kind TEXT NOT NULL,
                -- JSON of BillingCore.Event.Change.
                payload TEXT NOT NULL
            )
            """,
            "CREATE INDEX events_by_account ON events(account_id, sequence)",
            "CREATE UNIQUE INDEX events_by_account_sequence ON events(account_id, account_sequence)",
            """
            CREATE TABLE notifications (
                id TEXT PRIMARY KEY NOT NULL,
                account_id TEXT NOT NULL REFERENCES accounts(id),
                severity TEXT NOT NULL CHECK (severity IN ('info', 'error')),
                title TEXT NOT NULL,
                body TEXT NOT NULL,
                payment_id TEXT REFERENCES payments(id),
                created_at_ms BIGINT NOT NULL
            )
            """,
            "CREATE INDEX notifications_by_account ON notifications(account_id, created_at_ms DESC, id DESC)",
            """
            CREATE TABLE idempotency_keys (
                account_id TEXT NOT NULL,
                operation TEXT NOT NULL,
                key TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                result_id TEXT NOT NULL,
                created_at_ms BIGINT NOT NULL,
                expires_at_ms BIGINT NOT NULL,
                PRIMARY KEY (account_id, operation, key)
            )
            """,
            """
            CREATE TABLE migration_orders (
                id TEXT PRIMARY KEY NOT NULL,
                account_id TEXT NOT NULL REFERENCES accounts(id),
                external_id TEXT NOT NULL,
                description TEXT NOT NULL,
                price_minor BIGINT NOT NULL CHECK (price_minor > 0),
                currency TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('awaiting_payment', 'payment_pending', 'paid')),
                payment_id TEXT,
                created_at_ms BIGINT NOT NULL,
                paid_at_ms BIGINT,
                UNIQUE (account_id, external_id)
            )
            """,
            """
            CREATE TABLE renewable_services (
                id TEXT PRIMARY KEY NOT NULL,
                account_id TEXT NOT NULL REFERENCES accounts(id),
                display_name TEXT NOT NULL,
                price_minor BIGINT NOT NULL CHECK (price_minor > 0),
                currency TEXT NOT NULL,
                period_days BIGINT NOT NULL CHECK (period_days BETWEEN 1 AND 3660),
                expires_at_ms BIGINT NOT NULL,
                updated_at_ms BIGINT NOT NULL,
                auto_days_before BIGINT CHECK (auto_days_before IS NULL OR auto_days_before BETWEEN 1 AND 90),
                auto_payer_id TEXT REFERENCES payers(id),
                auto_next_attempt_at_ms BIGINT
            )
            """,
            "CREATE INDEX renewable_services_by_account ON renewable_services(account_id, expires_at_ms, id)",
            "CREATE INDEX renewable_services_auto ON renewable_services(expires_at_ms) WHERE auto_days_before IS NOT NULL",
            """
            CREATE TABLE renewal_orders (
                id TEXT PRIMARY KEY NOT NULL,
                account_id TEXT NOT NULL REFERENCES accounts(id),
                total_minor BIGINT NOT NULL CHECK (total_minor > 0),
                from_balance_minor BIGINT NOT NULL DEFAULT 0 CHECK (from_balance_minor >= 0),
                currency TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('awaiting_payment', 'completed', 'cancelled')),
                payment_id TEXT,
                created_at_ms BIGINT NOT NULL,
                completed_at_ms BIGINT,
                auto_service_id TEXT,
                auto_period_ms BIGINT
            )
            """,
            "CREATE INDEX renewal_orders_holding ON renewal_orders(account_id) WHERE status = 'awaiting_payment'",
            """
            CREATE UNIQUE INDEX renewal_orders_one_per_period ON renewal_orders(auto_service_id, auto_period_ms)
                WHERE auto_service_id IS NOT NULL AND status != 'cancelled'
            """,
            """
            CREATE TABLE renewal_lines (
                -- Named like SQLite's implicit row id, so that one statement
                -- ("ORDER BY rowid": the order lines were written in) serves both.
                rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE,
                order_id TEXT NOT NULL REFERENCES renewal_orders(id),
                service_id TEXT NOT NULL REFERENCES renewable_services(id),
                periods BIGINT NOT NULL CHECK (periods BETWEEN 1 AND 120),
                amount_minor BIGINT NOT NULL,
                new_expires_at_ms BIGINT,
                PRIMARY KEY (order_id, service_id)
            )
            """,
            "CREATE INDEX renewal_lines_by_service ON renewal_lines(service_id)",
            """
            CREATE TABLE audit_log (
                id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                account_id TEXT NOT NULL REFERENCES accounts(id),
                payment_id TEXT,
                subject TEXT NOT NULL,
                action TEXT NOT NULL,
                detail TEXT NOT NULL,
                actor TEXT NOT NULL,
                via TEXT NOT NULL,
                at_ms BIGINT NOT NULL
            )
            """,
            "CREATE INDEX audit_by_account ON audit_log(account_id, id)",
            "CREATE INDEX audit_by_payment ON audit_log(payment_id, id) WHERE payment_id IS NOT NULL",
            """
            CREATE TABLE invoice_counters (
                series TEXT PRIMARY KEY NOT NULL,
                last_sequence BIGINT NOT NULL CHECK (last_sequence > 0)
            )
            """,
            """
            CREATE TABLE invoices (
                number TEXT PRIMARY KEY NOT NULL,
                series TEXT NOT NULL,
                sequence BIGINT NOT NULL CHECK (sequence > 0),
                payment_id TEXT NOT NULL UNIQUE REFERENCES payments(id),
                account_id TEXT NOT NULL REFERENCES accounts(id),
                payer_id TEXT NOT NULL REFERENCES payers(id),
                payer_name TEXT NOT NULL,
                payer_email TEXT NOT NULL,
                description TEXT NOT NULL,
                amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
                currency TEXT NOT NULL,
                issued_at_ms BIGINT NOT NULL,
                due_at_ms BIGINT NOT NULL,
                issuer TEXT NOT NULL,
                UNIQUE (series, sequence)
            )
            """,
            "CREATE INDEX invoices_by_account ON invoices(account_id, issued_at_ms)",
        ]
        + ["ledger", "events", "audit_log", "invoices"].flatMap { table in
            [
                """
                CREATE TRIGGER \(table)_append_only BEFORE UPDATE OR DELETE ON \(table)
                    FOR EACH ROW EXECUTE FUNCTION billingd_append_only()
                """,
                """
                CREATE TRIGGER \(table)_no_truncate BEFORE TRUNCATE ON \(table)
                    FOR EACH STATEMENT EXECUTE FUNCTION billingd_append_only()
                """,
            ]
        }

    /// Every table, parents before children: the order rows are copied in.
    static let tables = [
        "accounts", "payers", "payer_customers", "payment_methods", "migration_orders", "renewable_services",
        "renewal_orders", "renewal_lines", "payments", "ledger", "events", "notifications", "idempotency_keys",
        "audit_log", "invoice_counters", "invoices",
    ]
}
