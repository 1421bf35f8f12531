import ArgumentParser
import BillingAPI
import BillingMessages

struct Methods: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A payer's saved payment methods.",
        discussion: """
            Examples:
              billing methods list --payer pyr_1
              billing methods set-default pm_123
            """,
        subcommands: [List.self, SetDefault.self, Remove.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a payer's methods.",
            discussion: "Example: billing methods list --payer pyr_123"
        )
        @Option(help: "The payer id.") var payer: String
        @Flag(help: "Include removed methods.") var all = false
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                var request = BillingV1.ListPaymentMethodsRequest()
                request.payerId = payer
                request.includeRemoved = all
                let response = try await Clients(connection).methods.listPaymentMethods(
                    request,
                    options: connection.callOptions
                )
                if connection.json { return Output.json(response.methods.map(MethodView.init)) }
                Output.table(
                    ["ID", "NAME", "SYSTEM", "STATUS", "DEFAULT"],
                    response.methods.map {
                        [$0.id, $0.displayName, "\($0.system)", "\($0.status)", $0.isDefault ? "yes" : ""]
                    }
                )
            }
        }
    }

    struct SetDefault: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-default",
            abstract: "Make a confirmed method the payer's default.",
            discussion: "Example: billing methods set-default pm_123"
        )
        @Argument(help: "The method id.") var id: String
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                var request = BillingV1.SetDefaultPaymentMethodRequest()
                request.paymentMethodId = id
                let method = try await Clients(connection).methods.setDefaultPaymentMethod(
                    request,
                    options: connection.callOptions
                )
                if connection.json {
                    Output.json(MethodView(method))
                } else {
                    Output.line("\(method.id) is now the default")
                }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a saved method (detached at its payment system).",
            discussion: "Example: billing methods remove pm_123"
        )
        @Argument(help: "The method id.") var id: String
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                var request = BillingV1.RemovePaymentMethodRequest()
                request.paymentMethodId = id
                let method = try await Clients(connection).methods.removePaymentMethod(
                    request,
                    options: connection.callOptions
                )
                if connection.json { Output.json(MethodView(method)) } else { Output.line("\(method.id) removed") }
            }
        }
    }
}

/// `--option`-style payment choice shared by renewals and migrations.
struct PayWith: ParsableArguments {
    @Flag(help: "Pay from the account balance.") var balance = false
    @Flag(help: "Pay by invoice.") var invoice = false
    @Option(help: "A saved method id.") var method: String?
    @Option(help: "A payment system: stripe, paypal or sandbox.") var system: String?
    @Option(help: "Payer id or name (not needed with --balance; with --method, the method's payer).") var payer: String?
    @Option(help: "Where the payment system sends the person back.") var returnURL = "http://localhost/billing/payments"

    func validate() throws {
        guard [balance, invoice, method != nil, system != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("choose one of --balance, --invoice, --method or --system")
        }
        if let system, !["stripe", "paypal", "sandbox"].contains(system) {
            throw ValidationError("--system must be stripe, paypal or sandbox")
        }
    }

    /// The payer to send: --payer (id or name), or the payer whose saved
    /// method --method names; nil when paying from the balance.
    func payerID(account: String, clients: Clients, connection: ConnectionOptions) async throws -> String? {
        if let payer {
            return try await Payers.resolve(payer, account: account, clients: clients, connection: connection)
        }
        guard let method else { return nil }
        var list = BillingV1.ListPayersRequest()
        list.accountId = account
        for payer in try await clients.methods.listPayers(list, options: connection.callOptions).payers {
            var methods = BillingV1.ListPaymentMethodsRequest()
            methods.payerId = payer.id
            if try await clients.methods.listPaymentMethods(methods, options: connection.callOptions).methods.contains(
                where: { $0.id == method })
            {
                return payer.id
            }
        }
        throw UsageError("no payer of \(account) has the saved method \(method)")
    }

    var option: BillingV1.PaymentOption {
        Self.option(balance: balance, invoice: invoice, method: method, system: system, returnURL: returnURL)
    }

    static func option(
        balance: Bool,
        invoice: Bool,
        method: String?,
        system: String?,
        returnURL: String
    ) -> BillingV1.PaymentOption {
        var option = BillingV1.PaymentOption()
        if balance {
            option.option = .balance(BillingV1.BalanceOption())
        } else if invoice {
            option.option = .invoice(BillingV1.InvoiceOption())
        } else if let method {
            var saved = BillingV1.SavedMethodOption()
            saved.paymentMethodId = method
            option.option = .savedMethod(saved)
        } else if let system {
            var chosen = BillingV1.PaymentSystemOption()
            chosen.system = system == "stripe" ? .stripe : system == "paypal" ? .paypal : .sandbox
            chosen.returnUrl = returnURL
            option.option = .paymentSystem(chosen)
        }
        return option
    }
}

/// How a quote's rest would be paid: at most one of the ways `PayWith` takes.
struct QuoteWith: ParsableArguments {
    @Flag(help: "Quote paying from the account balance.") var balance = false
    @Flag(help: "Quote paying the rest by invoice.") var invoice = false
    @Option(help: "Quote paying the rest with this saved method.") var method: String?
    @Option(help: "Quote paying the rest through a payment system: stripe, paypal or sandbox (its minimum applies).")
    var system: String?

    func validate() throws {
        guard [balance, invoice, method != nil, system != nil].filter({ $0 }).count <= 1 else {
            throw ValidationError("choose at most one of --balance, --invoice, --method or --system")
        }
        if let system, !["stripe", "paypal", "sandbox"].contains(system) {
            throw ValidationError("--system must be stripe, paypal or sandbox")
        }
    }

    /// Nil when none was chosen.
    var option: BillingV1.PaymentOption? {
        guard balance || invoice || method != nil || system != nil else { return nil }
        return PayWith.option(balance: balance, invoice: invoice, method: method, system: system, returnURL: "")
    }
}
