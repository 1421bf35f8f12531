internal import GRDB

/// The schema, as versioned migrations that run at open, from an empty file or
/// from any earlier version. Never edit a registered migration: add the next.
///
/// What the schema itself guarantees (so no code path can break it):
/// - one ledger entry per `entry_key`: "credit:<payment>" makes a Paid payment
///   credit once, "debit:<order>" makes an order debit once;
/// - the ledger, the event log and the audit trail are append-only (triggers
///   refuse UPDATE/DELETE);
/// - one default method per payer (partial unique index);
/// - one idempotency record per account, operation and key;
/// - statuses are only the domain's values (CHECK constraints).
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: v1)
        }
        migrator.registerMigration("v2-renewals") { db in
            try db.execute(sql: v2)
        }
        migrator.registerMigration("v3-account-sequence") { db in
            try db.execute(sql: v3)
        }
        migrator.registerMigration("v4-ledger-by-payment") { db in
            // Reversals sum a payment's ledger entries.
            try db.execute(sql: "CREATE INDEX ledger_by_payment ON ledger(payment_id)")
        }
        migrator.registerMigration("v5-payments-by-provider-reference") { db in
            // Webhooks that name only the payment system's id (a late vault id) find the payment.
            try db.execute(sql: "CREATE INDEX payments_by_provider_reference ON payments(provider_reference)")
        }
        migrator.registerMigration("v6-payer-customers") { db in
            // A payment system's customer of a payer (Stripe's cus_…), made once and reused.
            try db.execute(
                sql: """
                    CREATE TABLE payer_customers (
                        payer_id TEXT NOT NULL REFERENCES payers(id),
                        system TEXT NOT NULL,
                        customer_reference TEXT NOT NULL,
                        PRIMARY KEY (payer_id, system)
                    ) STRICT
                    """
            )
        }
        migrator.registerMigration("v7-audit-log") { db in
            try db.execute(sql: v7)
        }
        migrator.registerMigration("v8-renewal-holds") { db in
            try db.execute(sql: v8)
        }
        migrator.registerMigration("v9-auto-renewal") { db in
            try db.execute(sql: v9)
        }
        migrator.registerMigration("v10-invoice-documents") { db in
            try db.execute(sql: v10)
        }
        migrator.registerMigration("v11-renewal-lines-by-service") { db in
            // The automatic renewal sweep asks which services have an order awaiting payment.
            try db.execute(sql: "CREATE INDEX renewal_lines_by_service ON renewal_lines(service_id)")
        }
        return migrator
    }

    static let v1 = """
        CREATE TABLE accounts (
            id TEXT PRIMARY KEY NOT NULL,
            display_name TEXT NOT NULL,
            currency TEXT NOT NULL,
            -- A cache of SUM(ledger.amount_minor), updated in the same transaction.
            balance_minor INTEGER NOT NULL DEFAULT 0,
            created_at_ms INTEGER NOT NULL
        ) STRICT;

        CREATE TABLE payers (
            id TEXT PRIMARY KEY NOT NULL,
            account_id TEXT NOT NULL REFERENCES accounts(id),
            display_name TEXT NOT NULL,
            email TEXT NOT NULL,
            created_at_ms INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX payers_by_account ON payers(account_id);

        CREATE TABLE payment_methods (
            id TEXT PRIMARY KEY NOT NULL,
            payer_id TEXT NOT NULL REFERENCES payers(id),
            system TEXT NOT NULL CHECK (system IN ('stripe', 'paypal', 'sandbox')),
            status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'failed', 'removed')),
            is_default INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
            display_name TEXT NOT NULL,
            provider_reference TEXT NOT NULL DEFAULT '',
            saved_with_payment_id TEXT NOT NULL,
            created_at_ms INTEGER NOT NULL,
            updated_at_ms INTEGER NOT NULL,
            CHECK (is_default = 0 OR status = 'confirmed')
        ) STRICT;
        CREATE UNIQUE INDEX one_default_method_per_payer ON payment_methods(payer_id) WHERE is_default = 1;

        CREATE TABLE payments (
            id TEXT PRIMARY KEY NOT NULL,
            account_id TEXT NOT NULL REFERENCES accounts(id),
            payer_id TEXT NOT NULL REFERENCES payers(id),
            purpose TEXT NOT NULL CHECK (purpose IN ('top_up', 'renewal', 'migration')),
            amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
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
            created_at_ms INTEGER NOT NULL,
            updated_at_ms INTEGER NOT NULL,
            finished_at_ms INTEGER,
            next_check_at_ms INTEGER,
            check_attempts INTEGER NOT NULL DEFAULT 0,
            -- The poller's claim: who checks it and until when (several instances).
            lease_owner TEXT,
            lease_until_ms INTEGER,
            CHECK ((status = 'new') = (finished_at_ms IS NULL))
        ) STRICT;
        CREATE INDEX payments_history ON payments(account_id, created_at_ms DESC, id DESC);
        CREATE INDEX payments_due ON payments(next_check_at_ms) WHERE status = 'new';

        CREATE TABLE ledger (
            id INTEGER PRIMARY KEY,
            account_id TEXT NOT NULL REFERENCES accounts(id),
            -- Signed: credits positive, debits negative.
            amount_minor INTEGER NOT NULL CHECK (amount_minor != 0),
            currency TEXT NOT NULL,
            entry_key TEXT NOT NULL UNIQUE,
            payment_id TEXT REFERENCES payments(id),
            reference TEXT NOT NULL,
            created_at_ms INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX ledger_by_account ON ledger(account_id);
        CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
            BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
        CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
            BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

        CREATE TABLE events (
            -- Assigned as MAX+1 inside the writing transaction: SQLite has one
            -- writer, so committed sequences are gap-free and increasing.
            sequence INTEGER PRIMARY KEY,
            account_id TEXT NOT NULL,
            at_ms INTEGER NOT NULL,
            kind TEXT NOT NULL,
            -- JSON of BillingCore.Event.Change.
            payload TEXT NOT NULL
        ) STRICT;
        CREATE INDEX events_by_account ON events(account_id, sequence);
        CREATE TRIGGER events_no_update BEFORE UPDATE ON events
            BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
        CREATE TRIGGER events_no_delete BEFORE DELETE ON events
            BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;

        CREATE TABLE notifications (
            id TEXT PRIMARY KEY NOT NULL,
            account_id TEXT NOT NULL REFERENCES accounts(id),
            severity TEXT NOT NULL CHECK (severity IN ('info', 'error')),
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            payment_id TEXT REFERENCES payments(id),
            created_at_ms INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX notifications_by_account ON notifications(account_id, created_at_ms DESC, id DESC);

        CREATE TABLE idempotency_keys (
            account_id TEXT NOT NULL,
            operation TEXT NOT NULL,
            key TEXT NOT NULL,
            -- The request's canonical form: the same key with another request is refused.
            fingerprint TEXT NOT NULL,
            result_id TEXT NOT NULL,
            created_at_ms INTEGER NOT NULL,
            expires_at_ms INTEGER NOT NULL,
            PRIMARY KEY (account_id, operation, key)
        ) STRICT;

        CREATE TABLE migration_orders (
            id TEXT PRIMARY KEY NOT NULL,
            account_id TEXT NOT NULL REFERENCES accounts(id),
            external_id TEXT NOT NULL,
            description TEXT NOT NULL,
            price_minor INTEGER NOT NULL CHECK (price_minor > 0),
            currency TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('awaiting_payment', 'payment_pending', 'paid')),
            payment_id TEXT,
            created_at_ms INTEGER NOT NULL,
            paid_at_ms INTEGER,
            UNIQUE (account_id, external_id)
        ) STRICT;
        """

    static let v2 = """
        CREATE TABLE renewable_services (
            id TEXT PRIMARY KEY NOT NULL,
            account_id TEXT NOT NULL REFERENCES accounts(id),
            display_name TEXT NOT NULL,
            price_minor INTEGER NOT NULL CHECK (price_minor > 0),
            currency TEXT NOT NULL,
            period_days INTEGER NOT NULL CHECK (period_days BETWEEN 1 AND 3660),
            expires_at_ms INTEGER NOT NULL,
            updated_at_ms INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX renewable_services_by_account ON renewable_services(account_id, expires_at_ms, id);

        CREATE TABLE renewal_orders (
            id TEXT PRIMARY KEY NOT NULL,
            account_id TEXT NOT NULL REFERENCES accounts(id),
            total_minor INTEGER NOT NULL CHECK (total_minor > 0),
            currency TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('awaiting_payment', 'completed', 'cancelled')),
            payment_id TEXT,
            created_at_ms INTEGER NOT NULL,
            completed_at_ms INTEGER
        ) STRICT;

        CREATE TABLE renewal_lines (
            order_id TEXT NOT NULL REFERENCES renewal_orders(id),
            service_id TEXT NOT NULL REFERENCES renewable_services(id),
            periods INTEGER NOT NULL CHECK (periods BETWEEN 1 AND 120),
            amount_minor INTEGER NOT NULL,
            -- Set when the order completes.
            new_expires_at_ms INTEGER,
            PRIMARY KEY (order_id, service_id)
        ) STRICT;
        """

    /// Each account's own gap-free event count, so that an account-scoped
    /// client resumes and reads "as of" in a numbering that counts nothing
    /// of other accounts (the global sequence does). Existing events are
    /// numbered in their global order; the append-only trigger is lifted for
    /// that one update only.
    static let v3 = """
        ALTER TABLE events ADD COLUMN account_sequence INTEGER;
        DROP TRIGGER events_no_update;
        UPDATE events SET account_sequence = numbered.n
            FROM (SELECT sequence, ROW_NUMBER() OVER (PARTITION BY account_id ORDER BY sequence) AS n FROM events) AS numbered
            WHERE numbered.sequence = events.sequence;
        CREATE TRIGGER events_no_update BEFORE UPDATE ON events
            BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
        CREATE TRIGGER events_account_sequence_required BEFORE INSERT ON events WHEN NEW.account_sequence IS NULL
            BEGIN SELECT RAISE(ABORT, 'an event needs its account sequence'); END;
        CREATE UNIQUE INDEX events_by_account_sequence ON events(account_id, account_sequence);
        """

    /// Who changed what and through what (`BillingCore.Audit`), written in
    /// the change's own transaction; append-only like the ledger.
    static let v7 = """
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            account_id TEXT NOT NULL REFERENCES accounts(id),
            payment_id TEXT,
            subject TEXT NOT NULL,
            action TEXT NOT NULL,
            detail TEXT NOT NULL,
            actor TEXT NOT NULL,
            via TEXT NOT NULL,
            at_ms INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX audit_by_account ON audit_log(account_id, id);
        CREATE INDEX audit_by_payment ON audit_log(payment_id, id) WHERE payment_id IS NOT NULL;
        CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
        CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
        """

    /// Renewals take the available balance first: an order records the part
    /// of its total it takes from the balance, held while its payment is New.
    /// Orders before this version took nothing (a payment of the whole total)
    /// or, completed from the balance, all of it.
    static let v8 = """
        ALTER TABLE renewal_orders ADD COLUMN from_balance_minor INTEGER NOT NULL DEFAULT 0
            CHECK (from_balance_minor >= 0);
        UPDATE renewal_orders SET from_balance_minor = total_minor WHERE status = 'completed' AND payment_id IS NULL;
        CREATE INDEX renewal_orders_holding ON renewal_orders(account_id) WHERE status = 'awaiting_payment';
        """

    /// Automatic renewal: a service's setting and retry schedule, and an
    /// automatic order's period, of which at most one order that is not
    /// cancelled exists (the once-per-period rule, made by the schema too).
    static let v9 = """
        ALTER TABLE renewable_services ADD COLUMN auto_days_before INTEGER
            CHECK (auto_days_before IS NULL OR auto_days_before BETWEEN 1 AND 90);
        ALTER TABLE renewable_services ADD COLUMN auto_payer_id TEXT REFERENCES payers(id);
        ALTER TABLE renewable_services ADD COLUMN auto_next_attempt_at_ms INTEGER;
        CREATE INDEX renewable_services_auto ON renewable_services(expires_at_ms) WHERE auto_days_before IS NOT NULL;
        ALTER TABLE renewal_orders ADD COLUMN auto_service_id TEXT;
        ALTER TABLE renewal_orders ADD COLUMN auto_period_ms INTEGER;
        CREATE UNIQUE INDEX renewal_orders_one_per_period ON renewal_orders(auto_service_id, auto_period_ms)
            WHERE auto_service_id IS NOT NULL AND status != 'cancelled';
        """

    /// Invoices as documents: each issued with its payment, numbered from its
    /// series' counter (moved in the same transaction: no gaps), a number
    /// never reused, the issuer's details as they were that day, append-only.
    static let v10 = """
        CREATE TABLE invoice_counters (
            series TEXT PRIMARY KEY NOT NULL,
            last_sequence INTEGER NOT NULL CHECK (last_sequence > 0)
        ) STRICT;

        CREATE TABLE invoices (
            number TEXT PRIMARY KEY NOT NULL,
            series TEXT NOT NULL,
            sequence INTEGER NOT NULL CHECK (sequence > 0),
            payment_id TEXT NOT NULL UNIQUE REFERENCES payments(id),
            account_id TEXT NOT NULL REFERENCES accounts(id),
            payer_id TEXT NOT NULL REFERENCES payers(id),
            payer_name TEXT NOT NULL,
            payer_email TEXT NOT NULL,
            description TEXT NOT NULL,
            amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
            currency TEXT NOT NULL,
            issued_at_ms INTEGER NOT NULL,
            due_at_ms INTEGER NOT NULL,
            -- InvoiceIssuer as JSON: the issuer's details on the day of issue.
            issuer TEXT NOT NULL,
            UNIQUE (series, sequence)
        ) STRICT;
        CREATE INDEX invoices_by_account ON invoices(account_id, issued_at_ms);

        CREATE TRIGGER invoices_no_update BEFORE UPDATE ON invoices
            BEGIN SELECT RAISE(ABORT, 'invoices are append-only'); END;
        CREATE TRIGGER invoices_no_delete BEFORE DELETE ON invoices
            BEGIN SELECT RAISE(ABORT, 'invoices are append-only'); END;
        """
}
