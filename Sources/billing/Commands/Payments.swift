import ArgumentParser
import BillingAPI
import BillingCore
import BillingMessages
import Foundation

struct Payments: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Payment history, newest first.",
        discussion: """
            A totals line (count and sum per status) follows the table; --csv writes the page as CSV \
            for a spreadsheet, --all every page.

            Examples:
              billing payments --account acc-1
              billing payments --account acc-1 --status new,cancelled --purpose top-up --limit 20
              billing payments --account acc-1 --payer "Acme LLC" --since 2026-11-01T00:00:00Z
              billing payments --account acc-1 --all --csv > payments.csv
              billing payments --account acc-1 --page-token <token from the previous page> --json
            """
    )

    @Option(help: "The account id.") var account: String
    @Option(help: "Statuses, comma-separated: new, paid, cancelled.") var status: String?
    @Option(help: "Purposes, comma-separated: top-up, renewal, migration.") var purpose: String?
    @Option(help: "Only this payer's payments (id or name).") var payer: String?
    @Option(help: "Created at or after (ISO 8601, e.g. 2026-11-01T00:00:00Z).") var since: String?
    @Option(help: "Created before (ISO 8601).") var until: String?
    @OptionGroup var paging: PageOptions
    @Flag(help: "CSV (a header row, then one row per payment) instead of the table.") var csv = false
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if csv && connection.json { throw ValidationError("choose --csv or --json") }
        if let since, let until, let from = try? Self.unixMs(since), let to = try? Self.unixMs(until), from >= to {
            throw ValidationError("--since \(since) is not before --until \(until)")
        }
    }

    func run() async throws {
        try await reportingFailures {
            var request = BillingV1.ListPaymentsRequest()
            request.accountId = account
            request.statuses = try list(status).map { text in
                switch text {
                case "new": return .new
                case "paid": return .paid
                case "cancelled", "canceled": return .cancelled
                default: throw UsageError("unknown status \"\(text)\" (new, paid, cancelled)")
                }
            }
            request.purposes = try list(purpose).map { text in
                switch text {
                case "top-up", "topup", "top_up": return .topUp
                case "renewal": return .renewal
                case "migration": return .migration
                default: throw UsageError("unknown purpose \"\(text)\" (top-up, renewal, migration)")
                }
            }
            let clients = try Clients(connection)
            if let payer {
                request.payerId = try await Payers.resolve(
                    payer,
                    account: account,
                    clients: clients,
                    connection: connection
                )
            }
            if since != nil || until != nil {
                var range = BillingV1.TimeRange()
                range.fromUnixMs = try since.map(Self.unixMs) ?? 0
                range.toUnixMs = try until.map(Self.unixMs) ?? 0
                request.created = range
            }
            let (payments, next) = try await paging.collect { page in
                request.page = page
                let response = try await clients.balance.listPayments(request, options: connection.callOptions)
                return (response.payments, response.nextPageToken)
            }
            if connection.json {
                struct View: Encodable {
                    let payments: [PaymentView]
                    let nextPageToken: String
                }
                Output.json(View(payments: payments.map(PaymentView.init), nextPageToken: next))
                return
            }
            if csv {
                Output.line(
                    Self.csvRow([
                        "id", "created", "purpose", "amount", "currency", "status", "option", "invoice", "reason",
                    ])
                )
                for p in payments {
                    let amount = (try? Currency(code: p.amount?.currency ?? "")).map {
                        Money(minorUnits: p.amount?.amountMinorUnits ?? 0, $0).formatted
                    }
                    Output.line(
                        Self.csvRow([
                            p.id, Output.time(p.createdAtUnixMs), Output.word(p.purpose), amount ?? "",
                            p.amount?.currency ?? "",
                            Output.word(p.status), Output.word(p.optionKind), p.invoiceNumber, p.failureReason,
                        ])
                    )
                }
                return
            }
            guard !payments.isEmpty else {
                Output.line(
                    "no payments"
                        + (request.statuses.isEmpty && request.purposes.isEmpty && request.payerId.isEmpty
                            && request.created == nil
                            ? "" : " match these filters")
                )
                return
            }
            Output.table(
                ["ID", "CREATED", "PURPOSE", "AMOUNT", "STATUS", "OPTION"],
                payments.map { p in
                    [
                        p.id, Output.time(p.createdAtUnixMs), Output.word(p.purpose), Output.money(p.amount),
                        Output.status(p.status),
                        p.invoiceNumber.isEmpty ? Output.word(p.optionKind) : p.invoiceNumber,
                    ]
                }
            )
            Output.line(Self.totals(payments))
            if !next.isEmpty { Output.line("next page: --page-token \(next)") }
        }
    }

    /// "3 payments: 2 paid 150.00 USD, 1 new 20.00 USD" (per status, per currency).
    static func totals(_ payments: [BillingV1.Payment]) -> String {
        var sums: [String: (count: Int, minor: Int64, currency: String)] = [:]
        var order: [String] = []
        for p in payments {
            let key = "\(Output.word(p.status)) \(p.amount?.currency ?? "")"
            if sums[key] == nil { order.append(key) }
            var entry = sums[key] ?? (0, 0, p.amount?.currency ?? "")
            entry.count += 1
            entry.minor = entry.minor.addingReportingOverflow(p.amount?.amountMinorUnits ?? 0).partialValue
            sums[key] = entry
        }
        let parts = order.map { key -> String in
            let entry = sums[key]!
            var money = BillingV1.Money()
            money.amountMinorUnits = entry.minor
            money.currency = entry.currency
            return "\(entry.count) \(key.split(separator: " ").first ?? "") \(Output.money(money))"
        }
        return "\(payments.count) payment\(payments.count == 1 ? "" : "s"): " + parts.joined(separator: ", ")
    }

    /// RFC 4180: quoted when needed, quotes doubled.
    static func csvRow(_ cells: [String]) -> String {
        cells.map { cell in
            cell.contains(where: { ",\"\n\r".contains($0) })
                ? "\"" + cell.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : cell
        }.joined(separator: ",")
    }

    private func list(_ text: String?) -> [String] {
        text.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() } } ?? []
    }

    static func unixMs(_ text: String) throws -> Int64 {
        guard let date = ISO8601DateFormatter().date(from: text) else {
            throw UsageError("\"\(text)\" is not an ISO 8601 time like 2026-11-01T00:00:00Z")
        }
        return Int64(date.timeIntervalSince1970 * 1000)
    }
}

struct PaymentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "payment",
        abstract: "Show, refresh or cancel one payment.",
        discussion: """
            Examples:
              billing payment show pay_123 --wait
              billing payment cancel pay_123 --reason "changed my mind"
            """,
        subcommands: [Show.self, Refresh.self, Cancel.self]
    )

    /// The payment with this id, or nil for none ("").
    static func load(_ id: String, clients: Clients, connection: ConnectionOptions) async throws -> BillingV1.Payment? {
        guard !id.isEmpty else { return nil }
        var request = BillingV1.GetPaymentRequest()
        request.paymentId = id
        return try await clients.balance.getPayment(request, options: connection.callOptions)
    }

    static func print(_ payment: BillingV1.Payment, json: Bool) {
        if json { return Output.json(PaymentView(payment)) }
        var rows: [[String]] = [
            ["id", payment.id], ["account", payment.accountId], ["payer", payment.payerId],
            ["purpose", Output.word(payment.purpose)],
            ["amount", Output.money(payment.amount)], ["status", Output.status(payment.status)],
            ["option", Output.word(payment.optionKind)],
            ["created", Output.time(payment.createdAtUnixMs)],
        ]
        if payment.system != .unspecified { rows.append(["system", Output.word(payment.system)]) }
        if !payment.providerReference.isEmpty { rows.append(["reference", payment.providerReference]) }
        if !payment.renewalOrderId.isEmpty { rows.append(["renewal order", payment.renewalOrderId]) }
        if !payment.migrationOrderId.isEmpty { rows.append(["migration order", payment.migrationOrderId]) }
        rows.append(["checks", "\(payment.checkAttempts)"])
        if payment.nextCheckAtUnixMs > 0 { rows.append(["next check", Output.time(payment.nextCheckAtUnixMs)]) }
        if !payment.invoiceNumber.isEmpty { rows.append(["invoice", payment.invoiceNumber]) }
        if !payment.redirectUrl.isEmpty { rows.append(["pay here", payment.redirectUrl]) }
        if !payment.failureReason.isEmpty { rows.append(["reason", payment.failureReason]) }
        if payment.finishedAtUnixMs > 0 { rows.append(["finished", Output.time(payment.finishedAtUnixMs)]) }
        Output.table(["FIELD", "VALUE"], rows)
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a payment.",
            discussion: "Example: billing payment show pay_123 --wait"
        )
        @Argument(help: "The payment id.") var id: String
        @Flag(help: "Wait until it is Paid or Cancelled.") var wait = false
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                let clients = try Clients(connection)
                if wait { return try await Waiter(clients: clients, connection: connection).wait(for: id) }
                var request = BillingV1.GetPaymentRequest()
                request.paymentId = id
                PaymentCommand.print(
                    try await clients.balance.getPayment(request, options: connection.callOptions),
                    json: connection.json
                )
            }
        }
    }

    struct Refresh: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask the payment system about a payment now.",
            discussion: "Example: billing payment refresh pay_123"
        )
        @Argument(help: "The payment id.") var id: String
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                var request = BillingV1.RefreshPaymentRequest()
                request.paymentId = id
                PaymentCommand.print(
                    try await Clients(connection).balance.refreshPayment(request, options: connection.callOptions),
                    json: connection.json
                )
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a New payment.",
            discussion: "Example: billing payment cancel pay_123 --reason \"changed my mind\""
        )
        @Argument(help: "The payment id.") var id: String
        @Option(help: "Why, for the history.") var reason: String = ""
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                var request = BillingV1.CancelPaymentRequest()
                request.paymentId = id
                request.reason = reason
                PaymentCommand.print(
                    try await Clients(connection).balance.cancelPayment(request, options: connection.callOptions),
                    json: connection.json
                )
            }
        }
    }
}

struct Invoice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show or download an invoice; settle or cancel one (operators: --as operator).",
        discussion: """
            An invoice is named by its number (INV-2026-000042) or its payment's id.
            Examples:
              billing invoice show INV-2026-000042
              billing invoice download INV-2026-000042                 # INV-2026-000042.pdf here
              billing invoice download pay_123 --format html --output -
              billing invoice settle pay_123 --reference "bank #42" --as operator
              billing invoice cancel pay_123 --reason duplicate --as operator
            """,
        subcommands: [Show.self, Download.self, Settle.self, CancelInvoice.self]
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show an invoice: number, dates, payer, amount, state.",
            discussion: "Example: billing invoice show INV-2026-000042 --json"
        )
        @Argument(help: "The invoice number or its payment's id.") var invoice: String
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                var request = BillingV1.GetInvoiceRequest()
                request.invoice = invoice
                let shown = try await Clients(connection).balance.getInvoice(request, options: connection.callOptions)
                guard let invoice = shown.invoice else { throw UsageError("billingd sent no invoice") }
                if connection.json {
                    struct View: Encodable {
                        let number, paymentId, accountId, payerId, payerName, payerEmail, description, state: String
                        let amount: MoneyView?
                        let issuedAtUnixMs, dueAtUnixMs, voidAtUnixMs: Int64
                        let issuerName, legalText: String
                        let issuerLines, bankLines: [String]
                    }
                    return Output.json(
                        View(
                            number: invoice.number,
                            paymentId: invoice.paymentId,
                            accountId: invoice.accountId,
                            payerId: invoice.payerId,
                            payerName: invoice.payerName,
                            payerEmail: invoice.payerEmail,
                            description: invoice.description,
                            state: Output.word(invoice.state),
                            amount: MoneyView(invoice.amount),
                            issuedAtUnixMs: invoice.issuedAtUnixMs,
                            dueAtUnixMs: invoice.dueAtUnixMs,
                            voidAtUnixMs: invoice.voidAtUnixMs,
                            issuerName: invoice.issuerName,
                            legalText: invoice.legalText,
                            issuerLines: invoice.issuerLines,
                            bankLines: invoice.bankLines
                        )
                    )
                }
                var rows = [
                    ["number", invoice.number], ["state", Output.word(invoice.state)],
                    ["amount", Output.money(invoice.amount)], ["for", Output.printable(invoice.description)],
                    ["payer", Output.printable("\(invoice.payerName) <\(invoice.payerEmail)>")],
                    ["issued", Output.time(invoice.issuedAtUnixMs)], ["due", Output.time(invoice.dueAtUnixMs)],
                    ["payment", invoice.paymentId], ["issuer", Output.printable(invoice.issuerName)],
                ]
                if invoice.voidAtUnixMs != 0 { rows.append(["void if unpaid at", Output.time(invoice.voidAtUnixMs)]) }
                Output.table(["FIELD", "VALUE"], rows)
            }
        }
    }

    struct Download: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Save an invoice as a PDF (or a printable HTML page).",
            discussion: """
                Writes <number>.pdf (or .html) in the current folder unless --output names a file;
                "--output -" writes to standard output. An existing file is kept unless --force.
                Example: billing invoice download INV-2026-000042 --output ~/invoice.pdf
                """
        )
        /// All of `bytes` into `path` (created 0644 or replaced), or why not
        /// in the system's words ("No such file or directory").
        static func write(_ bytes: [UInt8], to path: String) throws {
            func problem() -> FileProblem {
                FileProblem("cannot write \(path): \(String(cString: strerror(errno)))")
            }
            let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard descriptor >= 0 else { throw problem() }
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
                if written < 0 {
                    if errno == EINTR { continue }
                    let failure = problem()
                    close(descriptor)
                    throw failure
                }
                offset += written
            }
            guard close(descriptor) == 0 else { throw problem() }
        }

        @Argument(help: "The invoice number or its payment's id.") var invoice: String
        @Option(help: "pdf or html.") var format = "pdf"
        @Option(help: "Where to write it (\"-\": standard output).") var output: String?
        @Flag(help: "Replace an existing file.") var force = false
        @OptionGroup var connection: ConnectionOptions

        func validate() throws {
            guard ["pdf", "html"].contains(format.lowercased()) else {
                throw ValidationError("--format must be pdf or html")
            }
        }

        func run() async throws {
            try await reportingFailures {
                let format = format.lowercased()
                // A named file that exists is refused before anything is asked.
                if let output, output != "-", !force, FileManager.default.fileExists(atPath: output) {
                    throw UsageError("\(output) exists; use --force to replace it or --output to name another file")
                }
                var request = BillingV1.GetInvoiceRequest()
                request.invoice = invoice
                request.format = format == "pdf" ? .pdf : .html
                let document = try await Clients(connection).balance.getInvoice(
                    request,
                    options: connection.callOptions
                )
                let number = document.invoice?.number ?? invoice
                let path = output ?? "\(number).\(format)"
                let data = Data(document.content)
                if path == "-" {
                    FileHandle.standardOutput.write(data)
                    return
                }
                if !force, FileManager.default.fileExists(atPath: path) {
                    throw UsageError("\(path) exists; use --force to replace it or --output to name another file")
                }
                try Self.write(document.content, to: path)
                if connection.json {
                    struct View: Encodable {
                        let number, path, contentType: String
                        let bytes: Int
                    }
                    return Output.json(
                        View(number: number, path: path, contentType: document.contentType, bytes: data.count)
                    )
                }
                Output.line("invoice \(number): \(data.count) bytes written to \(path)")
            }
        }
    }

    struct Settle: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mark an invoice paid.",
            discussion: "Example: billing invoice settle pay_123 --reference \"bank 2026-11-26 #42\" --as operator"
        )
        @Argument(help: "The invoice's payment id.") var id: String
        @Option(help: "The bank transfer's reference.") var reference: String = ""
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                var request = BillingV1.SettleInvoiceRequest()
                request.paymentId = id
                request.reference = reference
                PaymentCommand.print(
                    try await Clients(connection).balance.settleInvoice(request, options: connection.callOptions),
                    json: connection.json
                )
            }
        }
    }

    struct CancelInvoice: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cancel",
            abstract: "Cancel an unpaid invoice.",
            discussion: "Example: billing invoice cancel pay_123 --reason \"duplicate\" --as operator"
        )
        @Argument(help: "The invoice's payment id.") var id: String
        @Option(help: "Why.") var reason: String = ""
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                var request = BillingV1.CancelInvoiceRequest()
                request.paymentId = id
                request.reason = reason
                PaymentCommand.print(
                    try await Clients(connection).balance.cancelInvoice(request, options: connection.callOptions),
                    json: connection.json
                )
            }
        }
    }
}
