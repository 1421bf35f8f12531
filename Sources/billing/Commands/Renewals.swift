import ArgumentParser
import BillingAPI
import BillingMessages
import Foundation

struct Renewals: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Renewable services: list, quote, renew, and a renewal order with its payment.",
        discussion: """
            Examples:
              billing renewals list --account acc-1
              billing renewals renew --account acc-1 --service svc-1:12 --balance
              billing renewals order ro_123
              billing renewals auto --account acc-1 --service svc-1 --days 7 --payer pyr_1
            """,
        subcommands: [List.self, Quote.self, Renew.self, Order.self, Auto.self],
        defaultSubcommand: List.self
    )

    /// "svc-1:3" → service svc-1 for 3 periods; "svc-1" → 1 period.
    static func items(_ specs: [String]) throws -> [BillingV1.RenewalItem] {
        try specs.map { spec in
            let parts = spec.split(separator: ":")
            var item = BillingV1.RenewalItem()
            item.serviceId = String(parts[0])
            if parts.count == 2 {
                guard let periods = UInt32(parts[1]) else {
                    throw UsageError("\"\(spec)\": periods must be a whole number")
                }
                item.periods = periods
            } else {
                item.periods = 1
            }
            return item
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List an account's renewable services.",
            discussion: "Example: billing renewals list --account acc-1"
        )
        @Option(help: "The account id.") var account: String
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                var request = BillingV1.ListRenewableServicesRequest()
                request.accountId = account
                let services = try await Clients(connection).renewal.listRenewableServices(
                    request,
                    options: connection.callOptions
                ).services
                if connection.json {
                    struct View: Encodable {
                        let id, displayName: String
                        let pricePerPeriod: MoneyView?
                        let periodDays: UInt32
                        let expiresAtUnixMs: Int64
                        let autoRenewal: AutoView?
                    }
                    return Output.json(
                        services.map {
                            View(
                                id: $0.id,
                                displayName: $0.displayName,
                                pricePerPeriod: MoneyView($0.pricePerPeriod),
                                periodDays: $0.periodDays,
                                expiresAtUnixMs: $0.expiresAtUnixMs,
                                autoRenewal: $0.autoRenewal.map(AutoView.init)
                            )
                        }
                    )
                }
                Output.table(
                    ["ID", "NAME", "PRICE", "PERIOD", "EXPIRES", "AUTO-RENEW"],
                    services.map {
                        [
                            $0.id, Output.printable($0.displayName), Output.money($0.pricePerPeriod),
                            "\($0.periodDays) days", Output.time($0.expiresAtUnixMs), Renewals.describe($0.autoRenewal),
                        ]
                    }
                )
            }
        }
    }

    struct Quote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Price a renewal.",
            discussion: """
                The available balance goes first; the quote says what a payment would bring.
                Examples:
                  billing renewals quote --account acc-1 --service svc-1:3 --service svc-2
                  billing renewals quote --account acc-1 --service svc-1 --system stripe   # with Stripe's minimum
                """
        )
        @Option(help: "The account id.") var account: String
        @Option(help: "SERVICE[:PERIODS], repeatable.") var service: [String]
        @OptionGroup var with: QuoteWith
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                var request = BillingV1.QuoteRenewalRequest()
                request.accountId = account
                request.items = try Renewals.items(service)
                request.option = with.option
                let quote = try await Clients(connection).renewal.quoteRenewal(request, options: connection.callOptions)
                if connection.json {
                    struct Line: Encodable {
                        let serviceId: String
                        let periods: UInt32
                        let amount: MoneyView?
                        let newExpiresAtUnixMs: Int64
                    }
                    struct View: Encodable {
                        let lines: [Line]
                        let total, fromBalance, toPay, credited: MoneyView?
                        let note: String
                    }
                    return Output.json(
                        View(
                            lines: quote.lines.map {
                                Line(
                                    serviceId: $0.serviceId,
                                    periods: $0.periods,
                                    amount: MoneyView($0.amount),
                                    newExpiresAtUnixMs: $0.newExpiresAtUnixMs
                                )
                            },
                            total: MoneyView(quote.total),
                            fromBalance: MoneyView(quote.fromBalance),
                            toPay: MoneyView(quote.toPay),
                            credited: MoneyView(quote.credited),
                            note: quote.note
                        )
                    )
                }
                Output.table(
                    ["SERVICE", "PERIODS", "AMOUNT", "NEW EXPIRY"],
                    quote.lines.map {
                        [$0.serviceId, "\($0.periods)", Output.money($0.amount), Output.time($0.newExpiresAtUnixMs)]
                    }
                )
                Output.line("total: \(Output.money(quote.total))")
                Output.line("from the balance: \(Output.money(quote.fromBalance))")
                Output.line("to pay: \(Output.money(quote.toPay))")
                if let credited = quote.credited, credited.amountMinorUnits != 0 {
                    Output.line("credited to the balance: \(Output.money(credited))")
                }
                if !quote.note.isEmpty { Output.line("note: \(Output.printable(quote.note))") }
            }
        }
    }

    struct Renew: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Renew services.",
            discussion: """
                Examples:
                  billing renewals renew --account acc-1 --service svc-1:12 --balance
                  billing renewals renew --account acc-1 --service svc-1 --system sandbox --payer pyr_1 --wait
                  billing renewals renew --account acc-1 --service svc-1 --method pm_123     # the method's payer
                """
        )
        @Option(help: "The account id.") var account: String
        @Option(help: "SERVICE[:PERIODS], repeatable.") var service: [String]
        @OptionGroup var pay: PayWith
        @Flag(help: "Wait for the payment (not with --balance).") var wait = false
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                let clients = try Clients(connection)
                var quote = BillingV1.QuoteRenewalRequest()
                quote.accountId = account
                quote.items = try Renewals.items(service)
                quote.option = pay.option
                let quoted = try await clients.renewal.quoteRenewal(quote, options: connection.callOptions)
                var request = BillingV1.RenewRequest()
                request.accountId = account
                request.items = quote.items
                request.option = pay.option
                request.payerId =
                    try await pay.payerID(account: account, clients: clients, connection: connection) ?? ""
                request.expectedTotal = quoted.total
                // From the balance there is no payment to agree to (billingd says if it falls short).
                if !pay.balance { request.expectedToPay = quoted.toPay }
                let response = try await clients.renewal.renew(
                    request,
                    options: connection.callOptions.idempotencyKey(UUID().uuidString.lowercased())
                )
                if connection.json && !wait {
                    struct View: Encodable {
                        let orderId, status: String
                        let total, fromBalance: MoneyView?
                        let payment: PaymentView?
                        let redirectUrl: String
                    }
                    Output.json(
                        View(
                            orderId: response.order?.id ?? "",
                            status: Output.word(response.order?.status ?? .unspecified),
                            total: MoneyView(response.order?.total),
                            fromBalance: MoneyView(response.order?.fromBalance),
                            payment: response.payment.map(PaymentView.init),
                            redirectUrl: response.redirectUrl
                        )
                    )
                    if let payment = response.payment, payment.status == .cancelled { throw cancelled(payment) }
                    return
                }
                if !connection.json {
                    Output.line(
                        "renewal order \(response.order?.id ?? ""): \(Output.money(response.order?.total)) \(Output.word(response.order?.status ?? .unspecified))"
                    )
                    if let payment = response.payment {
                        Output.line(
                            "from the balance: \(Output.money(response.order?.fromBalance)), payment: \(Output.money(payment.amount))"
                        )
                    }
                    if !response.redirectUrl.isEmpty { Output.line("pay here: \(response.redirectUrl)") }
                }
                if wait, let payment = response.payment {
                    try await Waiter(clients: clients, connection: connection).wait(for: payment.id)
                } else if let payment = response.payment, payment.status == .cancelled {
                    throw cancelled(payment)
                }
            }
        }
    }
}

/// A service's automatic renewal as `--json` shows it.
struct AutoView: Encodable {
    let daysBefore: UInt32
    let payerId: String
    let nextAttemptAtUnixMs: Int64

    init(_ auto: BillingV1.AutoRenewal) {
        daysBefore = auto.daysBefore
        payerId = auto.payerId
        nextAttemptAtUnixMs = auto.nextAttemptAtUnixMs
    }
}

extension Renewals {
    /// "7 days before, payer pyr_1" / "off".
    static func describe(_ auto: BillingV1.AutoRenewal?) -> String {
        guard let auto else { return "off" }
        var text = "\(auto.daysBefore) days before"
        text += auto.payerId.isEmpty ? ", balance only" : ", then \(auto.payerId)'s default method"
        if auto.nextAttemptAtUnixMs != 0 { text += "; retry at \(Output.time(auto.nextAttemptAtUnixMs))" }
        return text
    }

    struct Auto: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Turn a service's automatic renewal on or off.",
            discussion: """
                The service renews itself for one period, --days days before it expires: from the
                available balance, and otherwise with the payer's default saved method (which pays
                only what the balance does not). Without --payer only the balance is used. A failed
                attempt makes an error notification and is retried after poller.autoRenewalRetrySeconds
                (a day by default) until the service expires.
                Examples:
                  billing renewals auto --account acc-1 --service svc-1 --days 7 --payer pyr_1
                  billing renewals auto --account acc-1 --service svc-1 --off
                """
        )
        @Option(help: "The account id.") var account: String
        @Option(help: "The service id.") var service: String
        @Option(help: "Renew this many days before expiry (1 to 90, at most the period).") var days: UInt32?
        @Option(help: "Payer id or name whose default saved method pays what the balance does not.")
        var payer: String?
        @Flag(help: "Turn automatic renewal off.") var off = false
        @OptionGroup var connection: ConnectionOptions

        func validate() throws {
            if off, days != nil { throw ValidationError("give either --days N (on) or --off, not both") }
            guard off || days != nil else { throw ValidationError("give --days N to turn it on, or --off") }
            if off, payer != nil { throw ValidationError("--payer goes with --days, not --off") }
            if let days, !(1...90).contains(days) { throw ValidationError("--days must be 1 to 90") }
        }

        func run() async throws {
            try await reportingFailures {
                let clients = try Clients(connection)
                var request = BillingV1.SetAutoRenewalRequest()
                request.accountId = account
                request.serviceId = service
                if let days {
                    var auto = BillingV1.AutoRenewal()
                    auto.daysBefore = days
                    if let payer {
                        auto.payerId = try await Payers.resolve(
                            payer,
                            account: account,
                            clients: clients,
                            connection: connection
                        )
                    }
                    request.autoRenewal = auto
                }
                let saved = try await clients.renewal.setAutoRenewal(request, options: connection.callOptions)
                if connection.json {
                    struct View: Encodable {
                        let id: String
                        let autoRenewal: AutoView?
                    }
                    return Output.json(View(id: saved.id, autoRenewal: saved.autoRenewal.map(AutoView.init)))
                }
                Output.line("\(saved.id): automatic renewal \(Renewals.describe(saved.autoRenewal))")
            }
        }
    }
}

extension Renewals {
    struct Order: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a renewal order, its lines and the payment that pays it.",
            discussion: "Example: billing renewals order ro_123 --json"
        )
        @Argument(help: "The renewal order id.") var id: String
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                let clients = try Clients(connection)
                var request = BillingV1.GetRenewalOrderRequest()
                request.orderId = id
                let order = try await clients.renewal.getRenewalOrder(request, options: connection.callOptions)
                let payment = try await PaymentCommand.load(order.paymentId, clients: clients, connection: connection)
                if connection.json {
                    struct Line: Encodable {
                        let serviceId: String
                        let periods: UInt32
                        let amount: MoneyView?
                        let newExpiresAtUnixMs: Int64
                    }
                    struct View: Encodable {
                        let id, accountId, status: String
                        let total, fromBalance: MoneyView?
                        let lines: [Line]
                        let payment: PaymentView?
                    }
                    return Output.json(
                        View(
                            id: order.id,
                            accountId: order.accountId,
                            status: Output.word(order.status),
                            total: MoneyView(order.total),
                            fromBalance: MoneyView(order.fromBalance),
                            lines: order.lines.map {
                                Line(
                                    serviceId: $0.serviceId,
                                    periods: $0.periods,
                                    amount: MoneyView($0.amount),
                                    newExpiresAtUnixMs: $0.newExpiresAtUnixMs
                                )
                            },
                            payment: payment.map(PaymentView.init)
                        )
                    )
                }
                Output.table(
                    ["FIELD", "VALUE"],
                    [
                        ["id", order.id], ["account", order.accountId], ["total", Output.money(order.total)],
                        ["from the balance", Output.money(order.fromBalance)], ["status", Output.word(order.status)],
                        ["created", Output.time(order.createdAtUnixMs)],
                    ]
                )
                Output.table(
                    ["SERVICE", "PERIODS", "AMOUNT", "NEW EXPIRY"],
                    order.lines.map {
                        [$0.serviceId, "\($0.periods)", Output.money($0.amount), Output.time($0.newExpiresAtUnixMs)]
                    }
                )
                if let payment {
                    Output.line("paid by:")
                    PaymentCommand.print(payment, json: false)
                } else {
                    Output.line("paid by: the balance")
                }
            }
        }
    }
}

struct Migration: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Migration orders: show, pay.",
        discussion: """
            Examples:
              billing migration show mo_123
              billing migration pay mo_123 --system sandbox --payer pyr_1 --wait
            """,
        subcommands: [Show.self, Pay.self]
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a migration order and the payment that pays it.",
            discussion: "Example: billing migration show mo_123"
        )
        @Argument(help: "The order id.") var id: String
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                let clients = try Clients(connection)
                var request = BillingV1.GetMigrationOrderRequest()
                request.orderId = id
                let order = try await clients.migration.getMigrationOrder(request, options: connection.callOptions)
                let payment = try await PaymentCommand.load(order.paymentId, clients: clients, connection: connection)
                if connection.json {
                    struct View: Encodable {
                        let id, accountId, externalId, description, status, paymentId: String
                        let serverPrice: MoneyView?
                        let payment: PaymentView?
                    }
                    return Output.json(
                        View(
                            id: order.id,
                            accountId: order.accountId,
                            externalId: order.externalId,
                            description: order.description,
                            status: Output.word(order.status),
                            paymentId: order.paymentId,
                            serverPrice: MoneyView(order.serverPrice),
                            payment: payment.map(PaymentView.init)
                        )
                    )
                }
                Output.table(
                    ["FIELD", "VALUE"],
                    [
                        ["id", order.id], ["account", order.accountId], ["migration", order.externalId],
                        ["server price", Output.money(order.serverPrice)], ["status", Output.word(order.status)],
                    ]
                )
                if let payment {
                    Output.line("payment:")
                    PaymentCommand.print(payment, json: false)
                } else {
                    Output.line(order.status == .paid ? "paid from the balance" : "no payment yet")
                }
            }
        }
    }

    struct Pay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pay for a migration's server.",
            discussion: """
                Examples:
                  billing migration pay mo_123 --balance
                  billing migration pay mo_123 --system sandbox --payer pyr_1 --wait
                """
        )
        @Argument(help: "The order id.") var id: String
        @OptionGroup var pay: PayWith
        @Flag(help: "Wait for the payment (not with --balance).") var wait = false
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                let clients = try Clients(connection)
                var request = BillingV1.PayMigrationOrderRequest()
                request.orderId = id
                if pay.payer != nil || pay.method != nil {
                    var get = BillingV1.GetMigrationOrderRequest()
                    get.orderId = id
                    let account = try await clients.migration.getMigrationOrder(get, options: connection.callOptions)
                        .accountId
                    request.payerId =
                        try await pay.payerID(account: account, clients: clients, connection: connection) ?? ""
                }
                request.option = pay.option
                let response = try await clients.migration.payMigrationOrder(
                    request,
                    options: connection.callOptions.idempotencyKey(UUID().uuidString.lowercased())
                )
                if connection.json && !wait {
                    struct View: Encodable {
                        let orderId, status: String
                        let payment: PaymentView?
                        let redirectUrl: String
                    }
                    Output.json(
                        View(
                            orderId: response.order?.id ?? "",
                            status: Output.word(response.order?.status ?? .unspecified),
                            payment: response.payment.map(PaymentView.init),
                            redirectUrl: response.redirectUrl
                        )
                    )
                    if let payment = response.payment, payment.status == .cancelled { throw cancelled(payment) }
                    return
                }
                if !connection.json {
                    Output.line(
                        "migration order \(response.order?.id ?? ""): \(Output.word(response.order?.status ?? .unspecified))"
                    )
                    if !response.redirectUrl.isEmpty { Output.line("pay here: \(response.redirectUrl)") }
                }
                if wait, let payment = response.payment {
                    try await Waiter(clients: clients, connection: connection).wait(for: payment.id)
                } else if let payment = response.payment, payment.status == .cancelled {
                    throw cancelled(payment)
                }
            }
        }
    }
}
