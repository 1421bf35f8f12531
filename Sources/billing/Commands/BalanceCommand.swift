import ArgumentParser
import BillingAPI
import BillingMessages

struct BalanceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "balance",
        abstract: "Show an account's balance.",
        discussion: "Example: billing balance --account acc-1"
    )

    @Option(help: "The account id.") var account: String
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await reportingFailures {
            var request = BillingV1.GetBalanceRequest()
            request.accountId = account
            let response = try await Clients(connection).balance.getBalance(request, options: connection.callOptions)
            if connection.json {
                struct View: Encodable {
                    let accountId: String
                    let balance, held, available: MoneyView?
                    let asOfSequence: UInt64
                }
                Output.json(
                    View(
                        accountId: account,
                        balance: MoneyView(response.balance),
                        held: MoneyView(response.held),
                        available: MoneyView(response.available),
                        asOfSequence: response.asOfSequence
                    )
                )
            } else if let held = response.held, held.amountMinorUnits != 0 {
                Output.line(
                    "\(account): \(Output.money(response.balance)) (\(Output.money(held)) held for renewals awaiting payment, \(Output.money(response.available)) available)"
                )
            } else {
                Output.line("\(account): \(Output.money(response.balance))")
            }
        }
    }
}

struct Payers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List an account's payers.",
        discussion: "Example: billing payers --account acc-1"
    )

    @Option(help: "The account id.") var account: String
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await reportingFailures {
            var request = BillingV1.ListPayersRequest()
            request.accountId = account
            let payers = try await Clients(connection).methods.listPayers(request, options: connection.callOptions)
                .payers
            if connection.json {
                Output.json(payers.map(PayerView.init))
            } else {
                Output.table(["ID", "NAME", "EMAIL"], payers.map { [$0.id, $0.displayName, $0.email] })
            }
        }
    }

    /// A payer of `account` named by id or by display name (as `topup --payer` takes it).
    static func resolve(
        _ idOrName: String,
        account: String,
        clients: Clients,
        connection: ConnectionOptions
    ) async throws -> String {
        var request = BillingV1.ListPayersRequest()
        request.accountId = account
        let payers = try await clients.methods.listPayers(request, options: connection.callOptions).payers
        if let byID = payers.first(where: { $0.id == idOrName }) { return byID.id }
        let byName = payers.filter { $0.displayName == idOrName }
        guard byName.count == 1 else {
            throw UsageError(
                byName.isEmpty
                    ? "no payer \"\(idOrName)\" on \(account); payers: \(payers.map { "\($0.id) (\($0.displayName))" }.joined(separator: ", "))"
                    : "\(byName.count) payers of \(account) are named \"\(idOrName)\"; give the id: \(byName.map(\.id).joined(separator: ", "))"
            )
        }
        return byName[0].id
    }
}

struct Accounts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Provision accounts and payers (internal services; development).",
        discussion: """
            Examples:
              billing accounts create acc-1 --name "Jane's hosting"
              billing accounts add-payer acc-1 --name "Jane Doe" --email jane@example.com
            """,
        subcommands: [Create.self, Show.self, AddPayer.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an account.",
            discussion: "Example: billing accounts create acc-1 --name \"Jane's hosting\""
        )
        @Argument(help: "The account id (1 to 64 of A-Z a-z 0-9 _ . -).") var id: String
        @Option(help: "Display name.") var name: String
        @Option(help: "ISO 4217 currency (default: the server's).") var currency: String = ""
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                var request = BillingV1.CreateAccountRequest()
                request.accountId = id
                request.displayName = name
                request.currency = currency
                let account = try await Clients(connection).accounts.createAccount(
                    request,
                    options: connection.callOptions
                )
                if connection.json {
                    struct View: Encodable { let id, displayName, currency: String }
                    Output.json(View(id: account.id, displayName: account.displayName, currency: account.currency))
                } else {
                    Output.line("account \(account.id) (\(account.currency))")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show an account.",
            discussion: "Example: billing accounts show acc-1"
        )
        @Argument(help: "The account id.") var id: String
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                var request = BillingV1.GetAccountRequest()
                request.accountId = id
                let account = try await Clients(connection).accounts.getAccount(
                    request,
                    options: connection.callOptions
                )
                if connection.json {
                    struct View: Encodable { let id, displayName, currency: String }
                    Output.json(View(id: account.id, displayName: account.displayName, currency: account.currency))
                } else {
                    Output.line("\(account.id)  \(account.displayName)  \(account.currency)")
                }
            }
        }
    }

    struct AddPayer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-payer",
            abstract: "Add a payer to an account.",
            discussion: "Example: billing accounts add-payer acc-1 --name \"Jane Doe\" --email jane@example.com"
        )
        @Argument(help: "The account id.") var account: String
        @Option(help: "Payer name.") var name: String
        @Option(help: "Payer e-mail.") var email: String = ""
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingFailures {
                var request = BillingV1.CreatePayerRequest()
                request.accountId = account
                request.displayName = name
                request.email = email
                let payer = try await Clients(connection).accounts.createPayer(request, options: connection.callOptions)
                if connection.json {
                    Output.json(PayerView(payer))
                } else {
                    Output.line("payer \(payer.id) (\(payer.displayName))")
                }
            }
        }
    }
}
