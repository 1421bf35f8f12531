import ArgumentParser
import BillingAPI
import BillingCore
import BillingMessages
import BillingRPC
import Foundation

struct TopUp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topup", abstract: "Top up an account's balance.",
        discussion: """
            The amount is typed as a person writes it ("100", "100.5", "0.50"); with none, the presets \
            are offered on a terminal. The payer's default saved method is used unless --method, \
            --system or --invoice says otherwise.

            Examples:
              billing topup --account acc-1 --amount 100 --system sandbox --save-method --wait
              billing topup --account acc-1 --amount 250.75                 # the default saved method
              billing topup --account acc-1 --amount 1000 --invoice
            """)

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
        if let system, !["stripe", "paypal", "sandbox"].contains(system) { throw ValidationError("--system must be stripe, paypal or sandbox") }
    }

    func run() async throws {
        try await reportingFailures {
            let clients = try Clients(connection)
            var optionsRequest = BillingV1.GetTopUpOptionsRequest()
            optionsRequest.accountId = account
            let options = try await clients.balance.getTopUpOptions(optionsRequest, options: connection.callOptions)
            let chosenPayer = try choosePayer(options)
            let amount = try chooseAmount(options)
            let option = try chooseOption(chosenPayer)
            let key = idempotencyKey ?? UUID().uuidString.lowercased()

            var request = BillingV1.CreateTopUpRequest()
            request.accountId = account
            request.payerId = chosenPayer.payer?.id ?? ""
            request.amount = amount
            request.option = option
            let response = try await clients.balance.createTopUp(request, options: connection.callOptions.idempotencyKey(key))
            guard let payment = response.payment else { throw RPCError(.internal, "billingd returned no payment") }

            if connection.json && !wait {
                struct View: Encodable { let payment: PaymentView; let redirectUrl: String; let idempotencyKey: String }
                Output.json(View(payment: PaymentView(payment), redirectUrl: response.redirectUrl, idempotencyKey: key))
                return
            }
            if !connection.json {
                Output.line("payment \(payment.id): \(Output.money(payment.amount)) \(Output.status(payment.status)) (idempotency key \(key))")
                if !payment.invoiceNumber.isEmpty { Output.line("invoice \(payment.invoiceNumber)") }
                if !response.redirectUrl.isEmpty {
                    Output.line("pay here: \(response.redirectUrl)")
                    if open { openInBrowser(response.redirectUrl) }
                }
            }
            if wait { try await Waiter(clients: clients, connection: connection).wait(for: payment.id) }
        }
    }

    private func choosePayer(_ options: BillingV1.GetTopUpOptionsResponse) throws -> BillingV1.PayerOptions {
        if let payer {
            guard let found = options.payers.first(where: { $0.payer?.id == payer || $0.payer?.displayName == payer }) else {
                throw UsageError("no payer \"\(payer)\" on \(account); payers: \(options.payers.compactMap { $0.payer?.displayName }.joined(separator: ", "))")
            }
            return found
        }
        guard options.payers.count == 1, let only = options.payers.first else {
            throw UsageError(options.payers.isEmpty ? "account \(account) has no payers" :
                "account \(account) has several payers; choose one with --payer: \(options.payers.compactMap { $0.payer.map { "\($0.id) (\($0.displayName))" } }.joined(separator: ", "))")
        }
        return only
    }

    private func chooseAmount(_ options: BillingV1.GetTopUpOptionsResponse) throws -> BillingV1.Money {
        guard let currencyCode = options.minAmount?.currency, let currency = try? Currency(code: currencyCode) else {
            throw RPCError(.internal, "billingd sent no top-up limits")
        }
        let presets = options.presets.map { Money(minorUnits: $0.amountMinorUnits, currency) }
        var text = amount
        if text == nil {
            guard isatty(STDIN_FILENO) == 1 else {
                throw UsageError("--amount is required (presets: \(presets.map(\.formatted).joined(separator: ", ")) \(currency))")
            }
            text = Prompt.choosePreset(presets, minimum: Output.money(options.minAmount), maximum: Output.money(options.maxAmount))
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

    private func chooseOption(_ payer: BillingV1.PayerOptions) throws -> BillingV1.PaymentOption {
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
                    throw UsageError("no confirmed method \"\(method)\" for this payer; methods: \(payer.methods.map { "\($0.id) (\($0.displayName))" }.joined(separator: ", "))")
                }
                id = found.id
            } else {
                guard !payer.defaultMethodId.isEmpty else {
                    throw UsageError("the payer has no default saved method; choose --system, --invoice or --method")
                }
                id = payer.defaultMethodId
            }
            var saved = BillingV1.SavedMethodOption()
            saved.paymentMethodId = id
            option.option = .savedMethod(saved)
        }
        return option
    }

    private func openInBrowser(_ url: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["xdg-open", url]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        if (try? process.run()) == nil { Output.line("(could not open a browser; open the link yourself)") }
    }
}

/// Reading a choice at a terminal.
enum Prompt {
    static func choosePreset(_ presets: [Money], minimum: String, maximum: String) -> String? {
        FileHandle.standardOutput.write(Data("Amount (\(minimum) to \(maximum)):\n".utf8))
        for (index, preset) in presets.enumerated() {
            FileHandle.standardOutput.write(Data("  [\(index + 1)] \(preset)\n".utf8))
        }
        FileHandle.standardOutput.write(Data("Choose 1-\(presets.count) or type an amount: ".utf8))
        guard let answer = readLine()?.trimmingCharacters(in: .whitespaces), !answer.isEmpty else { return nil }
        if let index = Int(answer), (1...presets.count).contains(index) { return presets[index - 1].formatted }
        return answer
    }
}
