public import BillingCore

/// What an invoice says, worked out once from its document; the HTML page
/// and the PDF lay out the same words.
public struct InvoiceText: Sendable {
    public var issuerName: String
    public var issuerLines: [String]
    public var title: String
    /// Label and value: number, dates, state.
    public var facts: [(String, String)]
    /// billingd's id of the invoice's payment (for support).
    public var paymentID: String
    public var billTo: [String]
    /// What was sold; one item a line.
    public var lineDescription: String
    public var amount: String
    public var total: String
    /// How to pay, or that it is paid or void.
    public var instruction: String
    public var bankLines: [String]
    public var legalText: String
    /// "PAID" or "VOID" across the page; empty while open.
    public var stamp: String

    public init(_ document: InvoiceDocument) {
        let invoice = document.invoice
        issuerName = invoice.issuer.name
        issuerLines = invoice.issuer.lines
        title = "Invoice \(invoice.number)"
        facts = [
            ("Invoice number", invoice.number),
            ("Issue date", Timestamps.day(invoice.issuedAtMs)),
            ("Due date", Timestamps.day(invoice.dueAtMs)),
            ("State", document.state.rawValue),
        ]
        paymentID = invoice.paymentID
        billTo = [invoice.payerName, invoice.payerEmail].filter { !$0.isEmpty }
        lineDescription = invoice.description
        amount = invoice.amount.description
        total = invoice.amount.description
        switch document.state {
        case .open:
            instruction =
                "Please transfer \(invoice.amount) by \(Timestamps.day(invoice.dueAtMs)), quoting \(invoice.number) as the reference."
            stamp = ""
        case .paid:
            let day = document.payment.finishedAtMs.map(Timestamps.day) ?? "-"
            instruction = "Paid on \(day). Thank you."
            stamp = "PAID"
        case .void:
            let reason = document.payment.failureReason.isEmpty ? "" : ": \(document.payment.failureReason)"
            instruction = "This invoice is void and need not be paid\(reason)."
            stamp = "VOID"
        }
        bankLines = invoice.issuer.bankLines
        legalText = invoice.issuer.legalText
    }
}
