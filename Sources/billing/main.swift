import ArgumentParser

struct BillingCLI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "billing",
        abstract: "Command-line client of billingd."
    )

    mutating func run() throws {
        print(Self.helpMessage())
    }
}

BillingCLI.main()
