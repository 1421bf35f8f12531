import ArgumentParser
import BillingAPI
import BillingMessages
import Foundation

struct Payments: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Payment history, newest first.",
        discussion: """
            Examples:
              billing payments --account acc-1
              billing payments --account acc-1 --status new,cancelled --purpose top-up --limit 20
              billing payments --account acc-1 --page-token <token from the previous page> --json
            """)

    @Option(help: "The account id.") var account: String
    @Option(help: "Statuses, comma-separated: new, paid, cancelled.") var status: String?
    @Option(help: "Purposes, comma-separated: top-up, renewal, migration.") var purpose: String?
    @Option(help: "Only this payer's payments (id).") var payer: String?
    @Option(help: "Created at or after (ISO 8601, e.g. 2026-11-01T00:00:00Z).") var since: String?
    @Option(help: "Created before (ISO 8601).") var until: String?
    @Option(help: "Page size, 1 to 200.") var limit: Int = 20
    @Option(help: "The next-page token printed by the previous page.") var pageToken: String?
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        guard (1...200).contains(limit) else { throw ValidationError("--limit must be 1 to 200") }
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
            request.payerId = payer ?? ""
            if since != nil || until != nil {
                var range = BillingV1.TimeRange()
                range.fromUnixMs = try since.map(Self.unixMs) ?? 0
                range.toUnixMs = try until.map(Self.unixMs) ?? 0
                request.created = range
            }
            var page = BillingV1.PageRequest()
            page.pageSize = UInt32(limit)
            page.pageToken = pageToken ?? ""
            request.page = page
            let response = try await Clients(connection).balance.listPayments(request, options: connection.callOptions)
            if connection.json {
                struct View: Encodable { let payments: [PaymentView]; let nextPageToken: String }
                Output.json(View(payments: response.payments.map(PaymentView.init), nextPageToken: response.nextPageToken))
                return
            }
            Output.table(["ID", "CREATED", "PURPOSE", "AMOUNT", "STATUS", "OPTION"], response.payments.map { p in
                [p.id, Output.time(p.createdAtUnixMs), "\(p.purpose)", Output.money(p.amount), Output.status(p.status),
                 p.invoiceNumber.isEmpty ? "\(p.optionKind)" : p.invoiceNumber]
            })
            if !response.nextPageToken.isEmpty { Output.line("next page: --page-token \(response.nextPageToken)") }
        }
    }

    private func list(_ text: String?) -> [String] {
        text.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() } } ?? []
    }

    static func unixMs(_ text: String) throws -> Int64 {
        guard let date = ISO8601DateFormatter().date(from: text) else { throw UsageError("\"\(text)\" is not an ISO 8601 time like 2026-11-01T00:00:00Z") }
        return Int64(date.timeIntervalSince1970 * 1000)
    }
}

struct PaymentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "payment", abstract: "Show, refresh or cancel one payment.",
        subcommands: [Show.self, Refresh.self, Cancel.self])

    static func print(_ payment: BillingV1.Payment, json: Bool) {
        if json { return Output.json(PaymentView(payment)) }
        var rows: [[String]] = [
            ["id", payment.id], ["account", payment.accountId], ["payer", payment.payerId], ["purpose", "\(payment.purpose)"],
            ["amount", Output.money(payment.amount)], ["status", Output.status(payment.status)], ["option", "\(payment.optionKind)"],
            ["created", Output.time(payment.createdAtUnixMs)],
        ]
        if payment.system != .unspecified { rows.append(["system", "\(payment.system)"]) }
        if !payment.invoiceNumber.isEmpty { rows.append(["invoice", payment.invoiceNumber]) }
        if !payment.redirectUrl.isEmpty { rows.append(["pay here", payment.redirectUrl]) }
        if !payment.failureReason.isEmpty { rows.append(["reason", payment.failureReason]) }
        if payment.finishedAtUnixMs > 0 { rows.append(["finished", Output.time(payment.finishedAtUnixMs)]) }
        Output.table(["FIELD", "VALUE"], rows)
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a payment.", discussion: "Example: billing payment show pay_123 --wait")
        @Argument(help: "The payment id.") var id: String
        @Flag(help: "Wait until it is Paid or Cancelled.") var wait = false
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                let clients = try Clients(connection)
                if wait { return try await Waiter(clients: clients, connection: connection).wait(for: id) }
                var request = BillingV1.GetPaymentRequest()
                request.paymentId = id
                PaymentCommand.print(try await clients.balance.getPayment(request, options: connection.callOptions), json: connection.json)
            }
        }
    }

    struct Refresh: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ask the payment system about a payment now.", discussion: "Example: billing payment refresh pay_123")
        @Argument(help: "The payment id.") var id: String
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                var request = BillingV1.RefreshPaymentRequest()
                request.paymentId = id
                PaymentCommand.print(try await Clients(connection).balance.refreshPayment(request, options: connection.callOptions), json: connection.json)
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a New payment.", discussion: "Example: billing payment cancel pay_123 --reason \"changed my mind\"")
        @Argument(help: "The payment id.") var id: String
        @Option(help: "Why, for the history.") var reason: String = ""
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                var request = BillingV1.CancelPaymentRequest()
                request.paymentId = id
                request.reason = reason
                PaymentCommand.print(try await Clients(connection).balance.cancelPayment(request, options: connection.callOptions), json: connection.json)
            }
        }
    }
}

struct Invoice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Settle or cancel an invoice (operators: --as operator).",
        subcommands: [Settle.self, CancelInvoice.self])

    struct Settle: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Mark an invoice paid.", discussion: "Example: billing invoice settle pay_123 --reference \"bank 2026-11-26 #42\" --as operator")
        @Argument(help: "The invoice's payment id.") var id: String
        @Option(help: "The bank transfer's reference.") var reference: String = ""
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                var request = BillingV1.SettleInvoiceRequest()
                request.paymentId = id
                request.reference = reference
                PaymentCommand.print(try await Clients(connection).balance.settleInvoice(request, options: connection.callOptions), json: connection.json)
            }
        }
    }

    struct CancelInvoice: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel an unpaid invoice.", discussion: "Example: billing invoice cancel pay_123 --reason \"duplicate\" --as operator")
        @Argument(help: "The invoice's payment id.") var id: String
        @Option(help: "Why.") var reason: String = ""
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                var request = BillingV1.CancelInvoiceRequest()
                request.paymentId = id
                request.reason = reason
                PaymentCommand.print(try await Clients(connection).balance.cancelInvoice(request, options: connection.callOptions), json: connection.json)
            }
        }
    }
}
