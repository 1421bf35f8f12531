import ArgumentParser

// The server is not built yet: this prints its help so the README's first
// command works from the first commit on.
struct BillingDaemon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "billingd",
        abstract: "The billing back end of the hosting control panel."
    )

    mutating func run() throws {
        print(Self.helpMessage())
    }
}

BillingDaemon.main()
