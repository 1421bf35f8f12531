/// Invoices as documents. An invoice payment gets one when it is recorded:
/// a number from the issuer's series, the issue and due dates, the payer's
/// name and email, what it is for, and the issuer's details as they were
/// that day (a later configuration change does not rewrite an issued
/// invoice). Its state follows its payment: New is open, Paid is paid,
/// Cancelled is void.
///
/// Numbers: "<prefix><sequence>", or "<prefix><year>-<sequence>" when the
/// series starts again each year; sequences of six digits or more, from 1,
/// without gaps (the counter moves in the transaction that records the
/// payment, so a refused or rolled-back one takes no number) and never
/// reused (unique in storage).
public enum Invoices {
    /// The issuer's series of `nowMs`: the prefix, and the year when it resets yearly.
    public static func series(_ terms: InvoiceTerms, nowMs: Int64) -> String {
        terms.yearlyReset ? "\(terms.numberPrefix)\(Timestamps.civil(nowMs).year)-" : terms.numberPrefix
    }

    /// "INV-2026-000042".
    public static func number(series: String, sequence: Int64) -> String {
        let digits = String(sequence)
        return series + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    /// The invoice of a payment being recorded by invoice.
    static func issue(
        _ payment: Payment,
        payer: Payer,
        number: InvoiceNumber,
        terms: InvoiceTerms,
        description: String
    ) -> Invoice {
        Invoice(
            number: number.text,
            series: number.series,
            sequence: number.sequence,
            paymentID: payment.id,
            accountID: payment.accountID,
            payerID: payer.id,
            payerName: payer.displayName,
            payerEmail: payer.email,
            description: description,
            amount: payment.amount,
            issuedAtMs: payment.createdAtMs,
            dueAtMs: payment.createdAtMs + Int64(terms.dueDays) * Timestamps.dayMs,
            issuer: terms.issuer
        )
    }

    /// When an unpaid invoice ends Cancelled: its due date plus the grace.
    public static func voidAtMs(dueAtMs: Int64, terms: InvoiceTerms) -> Int64 {
        dueAtMs + Int64(terms.graceDays) * Timestamps.dayMs
    }

    /// What an invoice line says a payment is for.
    static func description(_ purpose: PaymentPurpose, renewalOrderID: String?, migrationOrderID: String?) -> String {
        switch purpose {
        case .topUp: return "Balance top-up"
        case .renewal: return "Renewal of services (order \(renewalOrderID ?? "-"))"
        case .migration: return "Server for a migration (order \(migrationOrderID ?? "-"))"
        }
    }
}

/// What recording an invoice payment needs: its number and the terms.
public struct InvoiceIssue: Sendable, Hashable {
    public var number: InvoiceNumber
    public var terms: InvoiceTerms

    public init(number: InvoiceNumber, terms: InvoiceTerms) {
        self.number = number
        self.terms = terms
    }
}

/// A number taken from a series: the next after the series' last.
public struct InvoiceNumber: Sendable, Hashable {
    public var series: String
    public var sequence: Int64
    public var text: String { Invoices.number(series: series, sequence: sequence) }

    public init(series: String, sequence: Int64) {
        self.series = series
        self.sequence = sequence
    }
}

/// Who issues invoices and what they say about payment, as configured.
public struct InvoiceIssuer: Sendable, Hashable, Codable {
    /// The operator's legal name.
    public var name: String
    /// Address, registration and tax numbers, contact: one per line.
    public var lines: [String]
    /// Where to pay: bank, IBAN, BIC, account holder; one per line.
    public var bankLines: [String]
    /// Printed at the foot of every invoice.
    public var legalText: String

    public init(name: String, lines: [String], bankLines: [String], legalText: String) {
        self.name = name
        self.lines = lines
        self.bankLines = bankLines
        self.legalText = legalText
    }

    /// Limits on configured text: what a page can hold, and what an invoice
    /// must say (who issues it, where to pay).
    public func check() throws(BillingError) {
        try Text.check(name, "invoices.issuer.name", max: 200, required: true)
        guard lines.count <= 10, bankLines.count <= 10 else {
            throw .invalidArgument("invoices.issuer has at most 10 lines and 10 bank lines")
        }
        guard bankLines.contains(where: { !Text.isBlank($0) }) else {
            throw .invalidArgument("invoices.issuer.bankLines is required: an invoice says where to pay")
        }
        for (index, line) in lines.enumerated() { try Text.check(line, "invoices.issuer.lines[\(index)]", max: 200) }
        for (index, line) in bankLines.enumerated() {
            try Text.check(line, "invoices.issuer.bankLines[\(index)]", max: 200)
        }
        guard legalText.utf8.count <= 2000 else {
            throw .invalidArgument("invoices.issuer.legalText is longer than 2000 bytes")
        }
        guard legalText.split(separator: "\n", omittingEmptySubsequences: false).count <= 40 else {
            throw .invalidArgument("invoices.issuer.legalText has more than 40 lines")
        }
        // The legal text may have line breaks, nothing else of control.
        try Text.check(legalText.replacing("\n", with: " "), "invoices.issuer.legalText", max: 2000)
    }
}

/// The invoice settings of one billingd: the issuer, the number series and
/// the payment terms.
public struct InvoiceTerms: Sendable, Hashable {
    public var issuer: InvoiceIssuer
    /// 1 to 16 of A-Z, 0-9 and "-" (a number is an id: `IDs.check`).
    public var numberPrefix: String
    public var yearlyReset: Bool
    /// Due this many days after issue (1 to 365).
    public var dueDays: Int
    /// An unpaid invoice ends Cancelled this many days after its due date (0 to 365).
    public var graceDays: Int

    public init(issuer: InvoiceIssuer, numberPrefix: String, yearlyReset: Bool, dueDays: Int, graceDays: Int) {
        self.issuer = issuer
        self.numberPrefix = numberPrefix
        self.yearlyReset = yearlyReset
        self.dueDays = dueDays
        self.graceDays = graceDays
    }

    /// The development default: a placeholder issuer that says so.
    public static let development = InvoiceTerms(
        issuer: InvoiceIssuer(
            name: "Example Hosting (development)",
            lines: ["1 Example Street, Example City", "Set invoices.issuer in the configuration"],
            bankLines: ["Bank: Example Bank", "IBAN: XX00 0000 0000 0000 0000 00", "BIC: EXAMPLEXXX"],
            legalText:
                "This invoice was issued by a development installation of billingd and is not a demand for payment."
        ),
        numberPrefix: "INV-",
        yearlyReset: true,
        dueDays: 14,
        graceDays: 7
    )

    public func check() throws(BillingError) {
        try issuer.check()
        guard (1...16).contains(numberPrefix.utf8.count),
            numberPrefix.utf8.allSatisfy({ (0x41...0x5A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2D })
        else { throw .invalidArgument("invoices.numberPrefix is 1 to 16 of A-Z, 0-9 and \"-\"") }
        guard (1...365).contains(dueDays) else { throw .invalidArgument("invoices.dueDays must be 1 to 365") }
        guard (0...365).contains(graceDays) else { throw .invalidArgument("invoices.graceDays must be 0 to 365") }
    }
}

/// An issued invoice. Its state is its payment's (`InvoiceState`).
public struct Invoice: Sendable, Hashable {
    public var number: String
    public var series: String
    public var sequence: Int64
    public var paymentID: String
    public var accountID: String
    public var payerID: String
    public var payerName: String
    public var payerEmail: String
    public var description: String
    public var amount: Money
    public var issuedAtMs: Int64
    public var dueAtMs: Int64
    public var issuer: InvoiceIssuer

    public init(
        number: String,
        series: String,
        sequence: Int64,
        paymentID: String,
        accountID: String,
        payerID: String,
        payerName: String,
        payerEmail: String,
        description: String,
        amount: Money,
        issuedAtMs: Int64,
        dueAtMs: Int64,
        issuer: InvoiceIssuer
    ) {
        self.number = number
        self.series = series
        self.sequence = sequence
        self.paymentID = paymentID
        self.accountID = accountID
        self.payerID = payerID
        self.payerName = payerName
        self.payerEmail = payerEmail
        self.description = description
        self.amount = amount
        self.issuedAtMs = issuedAtMs
        self.dueAtMs = dueAtMs
        self.issuer = issuer
    }
}

public enum InvoiceState: String, Sendable, Hashable, CaseIterable {
    case open, paid, void

    public init(_ status: PaymentStatus) {
        switch status {
        case .new: self = .open
        case .paid: self = .paid
        case .cancelled: self = .void
        }
    }
}

/// An invoice with its payment: what a document shows.
public struct InvoiceDocument: Sendable, Hashable {
    public var invoice: Invoice
    public var payment: Payment
    public var state: InvoiceState { InvoiceState(payment.status) }

    public init(invoice: Invoice, payment: Payment) {
        self.invoice = invoice
        self.payment = payment
    }
}
