import BillingCore
import BillingMessages
import Foundation

/// Everything the CLI prints: tables for people, JSON for scripts, colour only
/// on a terminal and never with NO_COLOR.
///
/// Every line is written to the file descriptor when it is produced (one
/// write(2), no stdio buffer): a `billing watch > file` or `| cat` shows each
/// event as it arrives, and a SIGTERM or SIGINT loses nothing already printed.
enum Output {
    static let stdoutIsTerminal = isatty(STDOUT_FILENO) == 1
    static let stderrIsTerminal = isatty(STDERR_FILENO) == 1
    static var colour: Bool {
        stdoutIsTerminal && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
            && ProcessInfo.processInfo.environment["TERM"] != "dumb"
    }

    /// With `--json`, errors are JSON too: {"error": {"code", "message", "details"}} on stderr.
    static let jsonRequested = CommandLine.arguments.contains("--json")

    static func error(_ line: String, code: String = "error", details: [String] = []) {
        if jsonRequested {
            struct Failure: Encodable {
                let error: Body
                struct Body: Encodable {
                    let code, message: String
                    let details: [String]
                }
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let data =
                (try? encoder.encode(Failure(error: .init(code: code, message: line, details: details)))) ?? Data()
            write(String(decoding: data, as: UTF8.self) + "\n", to: STDERR_FILENO)
            return
        }
        let colourful = stderrIsTerminal && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        write((colourful ? "\u{1B}[31mbilling:\u{1B}[0m " : "billing: ") + line + "\n", to: STDERR_FILENO)
    }

    static func line(_ text: String) {
        write(text + "\n", to: STDOUT_FILENO)
    }

    /// Text without a newline (a prompt).
    static func prompt(_ text: String) {
        write(text, to: STDOUT_FILENO)
    }

    /// All of `text`, now, retrying short writes and interrupts.
    private static func write(_ text: String, to descriptor: Int32) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written > 0 {
                bytes = bytes.dropFirst(written)
            } else if written < 0 && errno == EINTR {
                continue
            } else {
                return  // the reader went away (EPIPE): nothing more to say
            }
        }
    }

    /// An enum value as billingd spells it in its messages: `top_up`,
    /// `payment_pending`, `saved_method` (the Swift case names are camelCase).
    static func word(_ value: Any) -> String {
        var out = ""
        for character in String(describing: value) {
            if character.isUppercase {
                out += "_" + character.lowercased()
            } else {
                out.append(character)
            }
        }
        return out
    }

    /// Left-aligned columns, two spaces apart; widths by characters. Control
    /// characters in a cell (text from billingd: names, reasons, payment
    /// systems' messages) are shown as U+FFFD, so no cell can move the
    /// cursor or recolour the terminal.
    static func table(_ headers: [String], _ rows: [[String]]) {
        let rows = rows.map { $0.map(printable) }
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        func render(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
            }.joined(separator: "  ")
        }
        line(colour ? "\u{1B}[1m" + render(headers) + "\u{1B}[0m" : render(headers))
        for row in rows { line(render(row)) }
    }

    /// What billingd refuses in text (`Text.isControl`: control characters,
    /// line separators, bidirectional overrides), stored before it did so
    /// perhaps, replaced: never sent to a terminal.
    static func printable(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: Text.isControl) else { return text }
        return String(String.UnicodeScalarView(text.unicodeScalars.map { Text.isControl($0) ? "\u{FFFD}" : $0 }))
    }

    /// Stable field names (snake_case), sorted keys, money as minor units + currency.
    static func json(_ value: some Encodable) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        guard let data = try? encoder.encode(value) else { return }
        line(String(decoding: data, as: UTF8.self))
    }

    static func status(_ status: BillingV1.PaymentStatus) -> String {
        let text: String
        let code: String
        switch status {
        case .new: (text, code) = ("New", "33")
        case .paid: (text, code) = ("Paid", "32")
        case .cancelled: (text, code) = ("Cancelled", "31")
        default: (text, code) = ("?", "0")
        }
        return colour ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    static func money(_ money: BillingV1.Money?) -> String {
        guard let money else { return "-" }
        if let currency = try? Currency(code: money.currency) {
            return Money(minorUnits: money.amountMinorUnits, currency).description
        }
        return "\(money.amountMinorUnits) minor units \(money.currency)"
    }

    static func time(_ unixMs: Int64) -> String {
        guard unixMs > 0 else { return "-" }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date(timeIntervalSince1970: Double(unixMs) / 1000))
    }
}

// MARK: JSON views: the field names scripts rely on.

struct MoneyView: Encodable {
    let amountMinorUnits: Int64
    let currency: String

    init?(_ money: BillingV1.Money?) {
        guard let money else { return nil }
        amountMinorUnits = money.amountMinorUnits
        currency = money.currency
    }
}

struct PaymentView: Encodable {
    let id, accountId, payerId, purpose, status, option, system: String
    let amount: MoneyView?
    let redirectUrl, invoiceNumber, failureReason, paymentMethodId, savedPaymentMethodId, providerReference: String
    let renewalOrderId, migrationOrderId: String
    let createdAtUnixMs, finishedAtUnixMs, nextCheckAtUnixMs: Int64
    let checkAttempts: UInt32

    init(_ p: BillingV1.Payment) {
        id = p.id
        accountId = p.accountId
        payerId = p.payerId
        purpose = Output.word(p.purpose)
        status = Output.word(p.status)
        option = Output.word(p.optionKind)
        system = p.system == .unspecified ? "" : Output.word(p.system)
        providerReference = p.providerReference
        renewalOrderId = p.renewalOrderId
        migrationOrderId = p.migrationOrderId
        nextCheckAtUnixMs = p.nextCheckAtUnixMs
        checkAttempts = p.checkAttempts
        amount = MoneyView(p.amount)
        redirectUrl = p.redirectUrl
        invoiceNumber = p.invoiceNumber
        failureReason = p.failureReason
        paymentMethodId = p.paymentMethodId
        savedPaymentMethodId = p.savedPaymentMethodId
        createdAtUnixMs = p.createdAtUnixMs
        finishedAtUnixMs = p.finishedAtUnixMs
    }
}

struct MethodView: Encodable {
    let id, payerId, system, status, displayName: String
    let isDefault: Bool

    init(_ m: BillingV1.PaymentMethod) {
        id = m.id
        payerId = m.payerId
        system = Output.word(m.system)
        status = Output.word(m.status)
        displayName = m.displayName
        isDefault = m.isDefault
    }
}

struct PayerView: Encodable {
    let id, accountId, displayName, email: String

    init(_ p: BillingV1.Payer) {
        id = p.id
        accountId = p.accountId
        displayName = p.displayName
        email = p.email
    }
}

struct EventView: Encodable {
    let sequence: UInt64
    let accountId: String
    let atUnixMs: Int64
    let kind: String
    let paymentId: String?
    let status: String?
    let previousStatus: String?
    let methodId: String?
    let balance: MoneyView?
    let delta: MoneyView?
    let message: String?

    init(_ e: BillingV1.PaymentEvent) {
        sequence = e.sequence
        accountId = e.accountId
        atUnixMs = e.atUnixMs
        var kind = "unknown", paymentId: String?, status: String?, previous: String?, methodId: String?
        var balance: MoneyView?, delta: MoneyView?, message: String?
        switch e.event {
        case .paymentStatusChanged(let c)?:
            kind = "payment_status_changed"
            paymentId = c.payment?.id
            status = c.payment.map { Output.word($0.status) }
            previous = Output.word(c.previousStatus)
        case .methodStatusChanged(let c)?:
            kind = "method_status_changed"
            methodId = c.method?.id
            status = c.method.map { Output.word($0.status) }
            previous = Output.word(c.previousStatus)
        case .balanceChanged(let c)?:
            kind = "balance_changed"
            paymentId = c.paymentId.isEmpty ? nil : c.paymentId
            balance = MoneyView(c.balance)
            delta = MoneyView(c.delta)
        case .notification(let n)?:
            kind = "notification"
            paymentId = n.paymentId.isEmpty ? nil : n.paymentId
            message = n.body
        case .paymentReversed(let r)?:
            kind = "payment_reversed"
            paymentId = r.paymentId
            delta = MoneyView(r.amount)
            message = "\(Output.word(r.kind)) \(r.reversalReference)"
        case nil:
            break
        }
        self.kind = kind
        self.paymentId = paymentId
        self.status = status
        self.previousStatus = previous
        self.methodId = methodId
        self.balance = balance
        self.delta = delta
        self.message = message
    }
}
