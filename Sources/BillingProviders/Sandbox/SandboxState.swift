internal import BillingCore
internal import Foundation
internal import GRDB

/// The sandbox payment system's own records: its payments and the methods it
/// saved, in an SQLite file of its own beside billingd's database (or in
/// memory for tests).
///
/// The sandbox stands in for a real payment system, so its records must be
/// as durable as one: a payment it approved and billingd credited must still
/// be approved after a crash. Every change is one transaction in WAL mode
/// with `synchronous = FULL`, as the ledger's, and a change that cannot be
/// written fails the call that made it (never "succeeds" in memory only).
/// Each payment costs one indexed row, so the 100,000th costs what the first
/// did.
///
/// Thread-safe (GRDB's queue); every method may suspend, none blocks a caller.
final class SandboxState: Sendable {
    struct Payment: Sendable, Hashable {
        enum Status: String, Sendable { case open, approved, declined, expired }
        var id: String
        var paymentID: String
        var amountMinorUnits: Int64
        var currency: String
        var status: Status
        var saveMethod: Bool
        var returnURL: String
        var methodID: String?
    }

    private let queue: DatabaseQueue

    /// - Parameter path: the file, created readable by its owner only; nil
    ///   keeps everything in memory.
    /// - Parameter importing: a `sandbox-state.json` written by an earlier
    ///   billingd, imported once into an empty file and then renamed.
    init(path: String?, importing legacy: String? = nil) throws {
        var configuration = Configuration()
        // Several billingd instances of one machine may share the file (one
        // data directory): a writer waits for another's transaction.
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        if let path {
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if fd >= 0 { close(fd) }
            queue = try DatabaseQueue(path: path, configuration: configuration)
            try queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = WAL") }
        } else {
            queue = try DatabaseQueue(configuration: configuration)
        }
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE payments (
                        id TEXT PRIMARY KEY NOT NULL,
                        payment_id TEXT NOT NULL UNIQUE,
                        amount_minor INTEGER NOT NULL,
                        currency TEXT NOT NULL,
                        status TEXT NOT NULL CHECK (status IN ('open', 'approved', 'declined', 'expired')),
                        save_method INTEGER NOT NULL,
                        return_url TEXT NOT NULL,
                        method_id TEXT
                    ) STRICT;
                    CREATE TABLE methods (
                        id TEXT PRIMARY KEY NOT NULL,
                        active INTEGER NOT NULL
                    ) STRICT;
                    """
            )
        }
        try migrator.migrate(queue)
        if let legacy, FileManager.default.fileExists(atPath: legacy) { try importLegacy(legacy) }
    }

    /// The JSON state of earlier versions (`{"payments": {...}, "methods": {...}}`).
    private func importLegacy(_ path: String) throws {
        struct Legacy: Decodable {
            struct Entry: Decodable {
                var id: String, paymentID: String, amountMinorUnits: Int64, currency: String, status: String
                var saveMethod: Bool, returnURL: String, methodID: String?
            }
            var payments: [String: Entry]
            var methods: [String: Bool]
        }
        let legacy = try JSONDecoder().decode(Legacy.self, from: try Data(contentsOf: URL(fileURLWithPath: path)))
        try queue.write { db in
            guard try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM payments") == 0 else { return }
            for entry in legacy.payments.values {
                try db.execute(
                    sql: """
                        INSERT INTO payments (id, payment_id, amount_minor, currency, status, save_method, return_url, method_id)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        entry.id, entry.paymentID, entry.amountMinorUnits, entry.currency, entry.status,
                        entry.saveMethod, entry.returnURL, entry.methodID,
                    ]
                )
            }
            for (id, active) in legacy.methods {
                try db.execute(sql: "INSERT INTO methods (id, active) VALUES (?, ?)", arguments: [id, active])
            }
        }
        try FileManager.default.moveItem(atPath: path, toPath: path + ".imported")
    }

    // MARK: Reads

    func payment(id: String) async throws -> Payment? {
        try await queue.read { db in try Self.fetch(db, "id", id) }
    }

    func payment(of paymentID: String) async throws -> Payment? {
        try await queue.read { db in try Self.fetch(db, "payment_id", paymentID) }
    }

    // MARK: Changes, each one durable transaction

    /// The payment made for `paymentID` (a retry gets the same one).
    func openPayment(paymentID: String, amount: Money, saveMethod: Bool, returnURL: String) async throws -> Payment {
        try await queue.write { db in
            if let existing = try Self.fetch(db, "payment_id", paymentID) { return existing }
            let payment = Payment(
                id: IDs.make("sbx"),
                paymentID: paymentID,
                amountMinorUnits: amount.amountMinorUnits,
                currency: amount.currency.code,
                status: .open,
                saveMethod: saveMethod,
                returnURL: returnURL,
                methodID: nil
            )
            try Self.insert(db, payment)
            return payment
        }
    }

    /// An off-session charge of `methodID` for `paymentID`, once.
    func charge(
        paymentID: String,
        amount: Money,
        methodID: String,
        decline: Bool
    ) async throws -> (payment: Payment, methodActive: Bool) {
        try await queue.write { db in
            if let existing = try Self.fetch(db, "payment_id", paymentID) { return (existing, true) }
            let active =
                try Bool.fetchOne(db, sql: "SELECT active FROM methods WHERE id = ?", arguments: [methodID]) == true
            let payment = Payment(
                id: IDs.make("sbx"),
                paymentID: paymentID,
                amountMinorUnits: amount.amountMinorUnits,
                currency: amount.currency.code,
                status: active && !decline ? .approved : .declined,
                saveMethod: false,
                returnURL: "",
                methodID: methodID
            )
            try Self.insert(db, payment)
            return (payment, active)
        }
    }

    /// An open payment can no longer be paid; a decided one keeps its status.
    func expire(paymentID: String) async throws -> Payment? {
        try await queue.write { db in
            try db.execute(
                sql: "UPDATE payments SET status = 'expired' WHERE payment_id = ? AND status = 'open'",
                arguments: [paymentID]
            )
            return try Self.fetch(db, "payment_id", paymentID)
        }
    }

    /// Every approved payment, for reconciliation.
    func approvedPayments() async throws -> [Payment] {
        try await queue.read { db in
            try String.fetchAll(db, sql: "SELECT id FROM payments WHERE status = 'approved' ORDER BY id")
                .compactMap { try Self.fetch(db, "id", $0) }
        }
    }

    /// Every method still usable, for reconciliation.
    func activeMethods() async throws -> [String] {
        try await queue.read { db in try String.fetchAll(db, sql: "SELECT id FROM methods WHERE active = 1 ORDER BY id")
        }
    }

    func deactivate(methodID: String) async throws {
        try await queue.write { db in
            try db.execute(sql: "UPDATE methods SET active = 0 WHERE id = ?", arguments: [methodID])
        }
    }

    /// The person pressed Pay or Decline. Returns the payment before and
    /// after (equal when it was already decided), or nil if unknown.
    func decide(id: String, approve: Bool) async throws -> (before: Payment, after: Payment)? {
        try await queue.write { db in
            guard var payment = try Self.fetch(db, "id", id) else { return nil }
            let before = payment
            guard payment.status == .open else { return (before, payment) }
            payment.status = approve ? .approved : .declined
            if approve && payment.saveMethod {
                let method = IDs.make("sbpm")
                payment.methodID = method
                try db.execute(sql: "INSERT INTO methods (id, active) VALUES (?, 1)", arguments: [method])
            }
            try db.execute(
                sql: "UPDATE payments SET status = ?, method_id = ? WHERE id = ?",
                arguments: [payment.status.rawValue, payment.methodID, payment.id]
            )
            return (before, payment)
        }
    }

    private static func fetch(_ db: Database, _ column: String, _ value: String) throws -> Payment? {
        // Cached: the poller reads a payment per check.
        guard
            let row = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT * FROM payments WHERE \(column) = ?"),
                arguments: [value]
            )
        else { return nil }
        guard let status = Payment.Status(rawValue: row["status"]) else { return nil }
        return Payment(
            id: row["id"],
            paymentID: row["payment_id"],
            amountMinorUnits: row["amount_minor"],
            currency: row["currency"],
            status: status,
            saveMethod: row["save_method"],
            returnURL: row["return_url"],
            methodID: row["method_id"]
        )
    }

    private static func insert(_ db: Database, _ payment: Payment) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO payments (id, payment_id, amount_minor, currency, status, save_method, return_url, method_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(
            arguments: [
                payment.id, payment.paymentID, payment.amountMinorUnits, payment.currency, payment.status.rawValue,
                payment.saveMethod, payment.returnURL, payment.methodID,
            ]
        )
    }
}
