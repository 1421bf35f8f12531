import ArgumentParser
import BillingAPI
import BillingMessages
import Foundation

/// The notifications the seed promises: an error for every payment that
/// failed, and the account's other news (refunds, disputes, cancels).
struct Notifications: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "An account's notifications, newest first.",
        discussion: """
            Examples:
              billing notifications --account acc-1
              billing notifications --account acc-1 --since 2026-11-01T00:00:00Z --json
              billing notifications --account acc-1 --all
            """
    )

    @Option(help: "The account id.") var account: String
    @Option(help: "Only those created at or after (ISO 8601).") var since: String?
    @OptionGroup var paging: PageOptions
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if let since, (try? Payments.unixMs(since)) == nil {
            throw ValidationError("\"\(since)\" is not an ISO 8601 time like 2026-11-01T00:00:00Z")
        }
    }

    func run() async throws {
        try await reportingFailures {
            let clients = try Clients(connection)
            let cutoff = try since.map(Payments.unixMs) ?? 0
            var request = BillingV1.ListNotificationsRequest()
            request.accountId = account
            // Newest first: a page that reaches past --since ends the listing.
            let (found, next) = try await paging.collect { page in
                request.page = page
                let response = try await clients.balance.listNotifications(request, options: connection.callOptions)
                let fresh = response.notifications.filter { $0.createdAtUnixMs >= cutoff }
                return (fresh, fresh.count < response.notifications.count ? "" : response.nextPageToken)
            }
            if connection.json {
                struct View: Encodable {
                    struct Item: Encodable {
                        let id, severity, title, body, paymentId: String
                        let createdAtUnixMs: Int64
                    }
                    let notifications: [Item]
                    let nextPageToken: String
                }
                return Output.json(
                    View(
                        notifications: found.map {
                            .init(
                                id: $0.id,
                                severity: Output.word($0.severity),
                                title: $0.title,
                                body: $0.body,
                                paymentId: $0.paymentId,
                                createdAtUnixMs: $0.createdAtUnixMs
                            )
                        },
                        nextPageToken: next
                    )
                )
            }
            guard !found.isEmpty else { return Output.line("no notifications") }
            Output.table(
                ["CREATED", "SEVERITY", "TITLE", "PAYMENT", "MESSAGE"],
                found.map {
                    [
                        Output.time($0.createdAtUnixMs), Output.word($0.severity), $0.title,
                        $0.paymentId.isEmpty ? "-" : $0.paymentId, $0.body,
                    ]
                }
            )
            if !next.isEmpty { Output.line("next page: --page-token \(next)") }
        }
    }
}

/// The top-up screen as data: what the seed's page offers this account.
struct Options: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The top-up page as data: presets, limits, payers, their methods, payment systems, invoices.",
        discussion: """
            Examples:
              billing options --account acc-1
              billing options --account acc-1 --json
            """
    )

    @Option(help: "The account id.") var account: String
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await reportingFailures {
            var request = BillingV1.GetTopUpOptionsRequest()
            request.accountId = account
            let options = try await Clients(connection).balance.getTopUpOptions(
                request,
                options: connection.callOptions
            )
            if connection.json {
                struct System: Encodable {
                    let system: String
                    let minimum, maximum: MoneyView?
                }
                struct PayerOptions: Encodable {
                    let payer: PayerView?
                    let methods: [MethodView]
                    let defaultMethodId: String
                }
                struct View: Encodable {
                    let minimum, maximum: MoneyView?
                    let presets: [MoneyView]
                    let payers: [PayerOptions]
                    let paymentSystems: [System]
                    let invoiceAvailable: Bool
                }
                return Output.json(
                    View(
                        minimum: MoneyView(options.minAmount),
                        maximum: MoneyView(options.maxAmount),
                        presets: options.presets.compactMap(MoneyView.init),
                        payers: options.payers.map {
                            .init(
                                payer: $0.payer.map(PayerView.init),
                                methods: $0.methods.map(MethodView.init),
                                defaultMethodId: $0.defaultMethodId
                            )
                        },
                        paymentSystems: options.systemLimits.map {
                            .init(
                                system: Output.word($0.system),
                                minimum: MoneyView($0.minAmount),
                                maximum: MoneyView($0.maxAmount)
                            )
                        },
                        invoiceAvailable: options.invoiceAvailable
                    )
                )
            }
            Output.line(
                "amount: \(Output.money(options.minAmount)) to \(Output.money(options.maxAmount)); presets: "
                    + options.presets.map { Output.money($0) }.joined(separator: ", ")
            )
            for payer in options.payers {
                Output.line("payer \(payer.payer?.id ?? "") \(payer.payer?.displayName ?? "")")
                if payer.methods.isEmpty { Output.line("  no saved methods") }
                for method in payer.methods {
                    Output.line(
                        "  \(method.id == payer.defaultMethodId ? "*" : " ") \(method.id) \(method.displayName)\(method.id == payer.defaultMethodId ? " (default)" : "")"
                    )
                }
            }
            for system in options.systemLimits {
                Output.line(
                    "pay with \(Output.word(system.system)): \(Output.money(system.minAmount)) to \(Output.money(system.maxAmount))"
                )
            }
            Output.line("invoice: \(options.invoiceAvailable ? "available" : "not offered")")
        }
    }
}
