import ArgumentParser
import BillingMessages
import BillingRPC
import Foundation

/// billing: the command-line client of billingd.
@main
struct BillingCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "billing",
        abstract: "Command-line client of billingd: balances, top-ups, payments, methods, renewals, migrations.",
        discussion: """
            Connects to billingd over mutual TLS. Where: --address, $BILLING_ADDRESS, the config file \
            (~/.config/billing/config.json or --config), else 127.0.0.1:7443. Certificates: --cert/--key/--ca, \
            $BILLING_CERT/$BILLING_KEY/$BILLING_CA, the config file, else the development set of a local \
            billingd in ./billingd-data/tls ($BILLINGD_DATA_DIR) as --as internal (default) or operator. \
            `billing doctor` shows what it would use and why a connection fails.

            Exit codes: 0 success, 64 usage error, 65 request refused by billingd (bad input, not found, \
            not allowed, wrong state), 69 cannot connect (address, TLS, certificate), 3 the payment ended \
            Cancelled (with --wait), 73 a file could not be written, 70 anything else.

            Examples:
              billing balance --account acc-1
              billing topup --account acc-1 --amount 100.50 --system sandbox --save-method --wait
              billing payments --account acc-1 --status new --json
              billing watch --account acc-1 --resume panel
              billing notifications --account acc-1
            """,
        subcommands: [
            Doctor.self, BalanceCommand.self, Options.self, TopUp.self, Payments.self, PaymentCommand.self,
            Notifications.self,
            Methods.self, Payers.self, Renewals.self, Migration.self, Invoice.self, Watch.self, Accounts.self,
            Audit.self, Reconcile.self,
        ]
    )
}

extension BillingCLI {
    /// An unknown command is named as such ("unknown command 'notificashuns'"),
    /// not reported as an unknown option of the top level.
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let names = Set(configuration.subcommands.map { $0._commandName } + ["help"])
        if let first = arguments.first, !first.hasPrefix("-"), !names.contains(first) {
            Output.error(
                "unknown command '\(first.prefix(40))'; commands: \(names.sorted().joined(separator: ", "))",
                code: "USAGE"
            )
            Foundation.exit(Exit.usage.rawValue)
        }
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// Exit codes a script can act on (sysexits-style where one fits).
enum Exit {
    static let usage = ExitCode(64)
    static let refused = ExitCode(65)
    static let unavailable = ExitCode(69)
    static let internalError = ExitCode(70)
    static let cannotWrite = ExitCode(73)
    static let paymentCancelled = ExitCode(3)
}

/// Every command's error path: one line a person can act on, and the exit
/// code of its class.
/// Runs a command's body; any failure leaves as `fail(_:)` says (an exit
/// code and one line for people), an `ExitCode` the body chose as it is.
func reportingFailures(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        throw fail(error)
    }
}

func fail(_ error: any Error) -> ExitCode {
    let (exit, code, line): (ExitCode, String, String)
    switch error {
    case let error as RPCError:
        switch error.code {
        case .unavailable, .deadlineExceeded:
            (exit, code, line) = (Exit.unavailable, "\(error.code)", "billingd unavailable: \(error.message)")
        case .invalidArgument, .notFound, .permissionDenied, .failedPrecondition, .alreadyExists, .resourceExhausted,
            .outOfRange, .unauthenticated, .unimplemented:
            (exit, code, line) = (Exit.refused, "\(error.code)", "refused (\(error.code)): \(error.message)")
        default:
            (exit, code, line) = (Exit.internalError, "\(error.code)", "error (\(error.code)): \(error.message)")
        }
    case let error as UsageError:
        (exit, code, line) = (Exit.usage, "USAGE", error.message)
    case let error as ConnectionProblem:
        (exit, code, line) = (Exit.unavailable, "UNAVAILABLE", error.message)
    case let error as FileProblem:
        (exit, code, line) = (Exit.cannotWrite, "CANNOT_WRITE", error.message)
    default:
        (exit, code, line) = (Exit.internalError, "INTERNAL", "error: \(error)")
    }
    Output.error(line, code: code)
    return exit
}

/// A payment that ended Cancelled: its reason on stderr, exit 3.
func cancelled(_ payment: BillingV1.Payment) -> ExitCode {
    Output.error(
        "payment \(payment.id) was cancelled: \(payment.failureReason.isEmpty ? "no reason given" : payment.failureReason)",
        code: "CANCELLED"
    )
    return Exit.paymentCancelled
}

struct UsageError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// A file the command was asked to write could not be (exit 73, EX_CANTCREAT).
struct FileProblem: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

struct ConnectionProblem: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
