import ArgumentParser
import BillingAPI
import BillingCore
import BillingMessages
import BillingRPC
import Foundation
import Subprocess

struct TopUp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topup",
        abstract: "Top up an account's balance.",
        discussion: """
            The amount is typed as a person writes it ("100", "100.5", "0.50"); with none, the presets \
            are offered on a terminal. Without --payer on an account with several payers, and without \
            --method, --system or --invoice, a terminal offers the payers, then pays with the chosen \
            payer's default saved method (selected automatically, as on the top-up page) or, with none, \
            offers its saved methods, the payment systems and the invoice; without a terminal these are \
            usage errors that list the choices. A payment that ends Cancelled exits 3 with its reason.

            Examples:
              billing topup --account acc-1 --amount 100 --system sandbox --save-method --wait
              billing topup --account acc-1 --amount 250.75                 # the default saved method
              billing topup --account acc-1 --amount 1000 --invoice
            """
    )

    @Option(help: "The account id.") var account: String
    @Option(help: "The amount, e.g. 100 or 100.50 (default: choose a preset on a terminal).") var amount: String?
    @Option(help: "Payer id or name (needed when the account has several).") var payer: String?
    @Option(help: "A saved method: id or display name.") var method: String?
    @Option(help: "Pay through a payment system: stripe, paypal or sandbox.") var system: String?
    @Flag(help: "Pay by invoice.") var invoice = false
    @Flag(help: "Save the method used on the payment system's page.") var saveMethod = false
    @Option(help: "Where the payment system sends the person back.") var returnURL = "http://localhost/billing/payments"
    @Option(help: "Idempotency key (default: a new one, printed, to retry safely).") var idempotencyKey: String?
    @Flag(help: "Wait until the payment is Paid or Cancelled.") var wait = false
    @Flag(help: "Open the payment page in a browser (xdg-open).") var open = false
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        let choices = [method != nil, system != nil, invoice].filter { $0 }.count
        if choices > 1 { throw ValidationError("choose one of --method, --system or --invoice") }
        if saveMethod && system == nil { throw ValidationError("--save-method goes with --system") }
        if let system, !["stripe", "paypal", "sandbox"].contains(system) {
            throw ValidationError("--system must be stripe, paypal or sandbox")
        }
    }

    func run() async throws {
        try await reportingFailures {
            let clients = try Clients(connection)
            var optionsRequest = BillingV1.GetTopUpOptionsRequest()
            optionsRequest.accountId = account
            let options = try await clients.balance.getTopUpOptions(optionsRequest, options: connection.callOptions)
            let chosenPayer = try choosePayer(options)
            let amount = try chooseAmount(options)
            let option = try chooseOption(
                chosenPayer,
                systems: options.paymentSystems,
                invoiceAvailable: options.invoiceAvailable
            )
            let key = idempotencyKey ?? UUID().uuidString.lowercased()

            var request = BillingV1.CreateTopUpRequest()
            request.accountId = account
            request.payerId = chosenPayer.payer?.id ?? ""
            request.amount = amount
            request.option = option
            let response = try await clients.balance.createTopUp(
                request,
                options: connection.callOptions.idempotencyKey(key)
            )
            guard let payment = response.payment else { throw RPCError(.internal, "billingd returned no payment") }

            if connection.json && !wait {
                struct View: Encodable {
                    let payment: PaymentView
                    let redirectUrl: String
                    let idempotencyKey: String
                }
                Output.json(View(payment: PaymentView(payment), redirectUrl: response.redirectUrl, idempotencyKey: key))
                if payment.status == .cancelled { throw cancelled(payment) }
                return
            }
            if !connection.json {
                Output.line(
                    "payment \(payment.id): \(Output.money(payment.amount)) \(Output.status(payment.status)) (idempotency key \(key))"
                )
                if !payment.invoiceNumber.isEmpty { Output.line("invoice \(payment.invoiceNumber)") }
                if !response.redirectUrl.isEmpty {
                    Output.line("pay here: \(response.redirectUrl)")
                    if open { await openInBrowser(response.redirectUrl) }
                }
            }
            if wait {
                try await Waiter(clients: clients, connection: connection).wait(for: payment.id)
            } else if payment.status == .cancelled {
                // Declined at once (a saved card): not a success, with or without --wait.
                throw cancelled(payment)
            }
        }
    }

    private func choosePayer(_ options: BillingV1.GetTopUpOptionsResponse) throws -> BillingV1.PayerOptions {
        if let payer {
            guard let found = options.payers.first(where: { $0.payer?.id == payer || $0.payer?.displayName == payer })
            else {
                throw UsageError(
                    "no payer \"\(payer)\" on \(account); payers: \(options.payers.compactMap { $0.payer?.displayName }.joined(separator: ", "))"
                )
            }
            return found
        }
        if options.payers.count == 1, let only = options.payers.first { return only }
        guard !options.payers.isEmpty else { throw UsageError("account \(account) has no payers") }
        let listed = options.payers.compactMap { $0.payer.map { "\($0.id) (\($0.displayName))" } }
        guard Prompt.interactive else {
            throw UsageError(
                "account \(account) has several payers; choose one with --payer: \(listed.joined(separator: ", "))"
            )
        }
        let index = try Prompt.choose(
            "Payer",
            options.payers.compactMap { $0.payer.map { "\($0.displayName) <\($0.email)>" } },
            preselected: nil
        )
        return options.payers[index]
    }

    private func chooseAmount(_ options: BillingV1.GetTopUpOptionsResponse) throws -> BillingV1.Money {
        guard let currencyCode = options.minAmount?.currency, let currency = try? Currency(code: currencyCode) else {
            throw RPCError(.internal, "billingd sent no top-up limits")
        }
        let presets = options.presets.map { Money(minorUnits: $0.amountMinorUnits, currency) }
        var text = amount
        if text == nil {
            guard Prompt.interactive else {
                throw UsageError(
                    "--amount is required (presets: \(presets.map(\.formatted).joined(separator: ", ")) \(currency))"
                )
            }
            text = try Prompt.amount(
                presets: presets,
                currency: currency,
                minimum: Money(minorUnits: options.minAmount?.amountMinorUnits ?? 1, currency),
                maximum: Money(minorUnits: options.maxAmount?.amountMinorUnits ?? Int64.max, currency)
            )
        }
        guard let text else { throw UsageError("no amount chosen") }
        do {
            let money = try Money(parsing: text, currency)
            var proto = BillingV1.Money()
            proto.amountMinorUnits = money.amountMinorUnits
            proto.currency = currency.code
            return proto
        } catch {
            throw UsageError("\(error)")
        }
    }

    private func chooseOption(
        _ payer: BillingV1.PayerOptions,
        systems: [BillingV1.PaymentSystem],
        invoiceAvailable: Bool
    ) throws -> BillingV1.PaymentOption {
        var option = BillingV1.PaymentOption()
        if invoice {
            option.option = .invoice(BillingV1.InvoiceOption())
        } else if let system {
            var chosen = BillingV1.PaymentSystemOption()
            chosen.system = system == "stripe" ? .stripe : system == "paypal" ? .paypal : .sandbox
            chosen.saveMethod = saveMethod
            chosen.returnUrl = returnURL
            option.option = .paymentSystem(chosen)
        } else {
            let id: String
            if let method {
                guard let found = payer.methods.first(where: { $0.id == method || $0.displayName == method }) else {
                    throw UsageError(
                        "no confirmed method \"\(method)\" for this payer; methods: \(payer.methods.map { "\($0.id) (\($0.displayName))" }.joined(separator: ", "))"
                    )
                }
                id = found.id
            } else if !payer.defaultMethodId.isEmpty {
                // The seed: a default saved method is selected automatically.
                id = payer.defaultMethodId
                if !connection.json, let chosen = payer.methods.first(where: { $0.id == id }) {
                    Output.line(
                        "paying with the default saved method \(chosen.displayName) (another: --method, --system or --invoice)"
                    )
                }
            } else if Prompt.interactive {
                // The seed's page: the payer's saved methods, the payment
                // systems, the invoice.
                var labels = payer.methods.map {
                    "\($0.displayName)\($0.id == payer.defaultMethodId ? " (default)" : "")"
                }
                labels += systems.map { "Pay with \(Output.word($0))" }
                if invoiceAvailable { labels.append("Invoice") }
                let preselected = payer.methods.firstIndex { $0.id == payer.defaultMethodId }
                let index = try Prompt.choose("Payment option", labels, preselected: preselected)
                if index >= payer.methods.count {
                    let rest = index - payer.methods.count
                    if rest < systems.count {
                        var chosen = BillingV1.PaymentSystemOption()
                        chosen.system = systems[rest]
                        chosen.saveMethod = try Prompt.yes("Save this method for later payments?")
                        chosen.returnUrl = returnURL
                        option.option = .paymentSystem(chosen)
                    } else {
                        option.option = .invoice(BillingV1.InvoiceOption())
                    }
                    return option
                }
                id = payer.methods[index].id
            } else {
                throw UsageError(
                    "the payer has no default saved method; choose --system (\(systems.map { Output.word($0) }.joined(separator: ", "))), --invoice or --method (\(payer.methods.map { "\($0.id) (\($0.displayName))" }.joined(separator: ", ")))"
                )
            }
            var saved = BillingV1.SavedMethodOption()
            saved.paymentMethodId = id
            option.option = .savedMethod(saved)
        }
        return option
    }

    /// Starts the browser and goes on at once (xdg-open may run as long as
    /// the browser does). Through swift-subprocess, not Foundation's
    /// `Process`, whose `run()` can crash on Linux
    /// (swift-corelibs-foundation#5472).
    private func openInBrowser(_ url: String) async {
        let (launched, launching) = AsyncStream<Bool>.makeStream()
        Task {
            do {
                _ = try await Subprocess.run(
                    .path("/usr/bin/env"),
                    arguments: ["xdg-open", url],
                    input: .none,
                    output: .discarded,
                    error: .discarded
                ) { _ in launching.yield(true) }
            } catch {
                launching.yield(false)
            }
            launching.finish()
        }
        var iterator = launched.makeAsyncIterator()
        if await iterator.next() != true { Output.line("(could not open a browser; open the link yourself)") }
    }
}

/// Reading choices at a terminal: lettered lists (so a number is always an
/// amount), asked again after a bad answer, at most a few times.
enum Prompt {
    static let interactive = isatty(STDIN_FILENO) == 1
    static let attempts = 5
    static let letters = Array("abcdefghijklmnopqrstuvwxyz")

    /// An amount: a letter picks a preset, anything else is read as an amount
    /// and must lie within the limits (asked again otherwise).
    static func amount(presets: [Money], currency: Currency, minimum: Money, maximum: Money) throws -> String {
        Output.line("Amount (\(minimum) to \(maximum)):")
        for (index, preset) in presets.prefix(letters.count).enumerated() {
            Output.line("  \(letters[index])) \(preset)")
        }
        for _ in 0..<attempts {
            Output.prompt(
                presets.isEmpty
                    ? "Type an amount: "
                    : "Choose \(letters[0])-\(letters[min(presets.count, letters.count) - 1]) or type an amount: "
            )
            guard let answer = readLine()?.trimmingCharacters(in: .whitespaces) else {
                throw UsageError("no amount chosen")
            }
            if answer.count == 1, let index = letters.firstIndex(of: Character(answer.lowercased())),
                index < presets.count
            {
                return presets[index].formatted
            }
            do {
                let money = try Money(parsing: answer, currency)
                guard money >= minimum, money <= maximum else {
                    Output.line("  \(money) is outside \(minimum) to \(maximum); try again")
                    continue
                }
                return money.formatted
            } catch {
                Output.line("  \(answer.isEmpty ? "an amount is needed" : "\(error)"); try again")
            }
        }
        throw UsageError("no valid amount after \(attempts) tries")
    }

    /// One of `labels`; Enter takes the pre-selected one.
    static func choose(_ what: String, _ labels: [String], preselected: Int?) throws -> Int {
        Output.line("\(what):")
        for (index, label) in labels.prefix(letters.count).enumerated() {
            Output.line("  \(letters[index])) \(label)\(index == preselected ? "  [selected]" : "")")
        }
        let last = letters[min(labels.count, letters.count) - 1]
        for _ in 0..<attempts {
            Output.prompt("Choose a-\(last)\(preselected.map { " (Enter: \(letters[$0]))" } ?? ""): ")
            guard let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() else {
                throw UsageError("no \(what.lowercased()) chosen")
            }
            if answer.isEmpty, let preselected { return preselected }
            if answer.count == 1, let index = letters.firstIndex(of: Character(answer)), index < labels.count {
                return index
            }
            Output.line("  \"\(answer)\" is not one of a-\(last); try again")
        }
        throw UsageError("no \(what.lowercased()) chosen after \(attempts) tries")
    }

    static func yes(_ question: String) throws -> Bool {
        for _ in 0..<attempts {
            Output.prompt("\(question) [y/N]: ")
            guard let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() else { return false }
            if ["", "n", "no"].contains(answer) { return false }
            if ["y", "yes"].contains(answer) { return true }
        }
        return false
    }
}
