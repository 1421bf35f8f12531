import ArgumentParser
import BillingAPI
import BillingMessages
import Foundation

/// Our books against Stripe's, PayPal's and the sandbox's for a period.
struct Reconcile: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare billingd's payments with the payment systems' for a period (read only).",
        discussion: """
            Every payment of the period that a payment system could know of is read there and
            compared: Paid here but not there; paid there but New or Cancelled here; a different
            amount or currency; money taken there naming a payment billingd does not hold; a method
            saved there for one of our payers that billingd does not hold. Nothing is changed on
            either side. Operators and internal services only.

            Exit status: 0 when the books agree, 1 with a report when they do not (other codes as
            for every command: 64 usage, 65 refused, 69 unavailable).

            Examples:
              billing reconcile --since 2026-11-01T00:00:00Z
              billing reconcile --since 2026-11-01T00:00:00Z --until 2026-12-01T00:00:00Z --system stripe --json
            """
    )

    @Option(help: "The first moment of the period (ISO 8601).") var since: String
    @Option(help: "The end of the period, excluded (ISO 8601); now when not given.") var until: String?
    @Option(help: "One payment system: stripe, paypal or sandbox; every one billingd uses when not given.")
    var system: String?
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        for time in [since] + (until.map { [$0] } ?? []) where (try? Payments.unixMs(time)) == nil {
            throw ValidationError("\"\(time)\" is not an ISO 8601 time like 2026-11-01T00:00:00Z")
        }
        if let system, !["stripe", "paypal", "sandbox"].contains(system) {
            throw ValidationError("--system must be stripe, paypal or sandbox")
        }
    }

    func run() async throws {
        var agree = true
        try await reportingFailures {
            var request = BillingV1.ReconcileRequest()
            request.fromUnixMs = try Payments.unixMs(since)
            request.toUnixMs = try until.map(Payments.unixMs) ?? 0
            switch system {
            case "stripe": request.system = .stripe
            case "paypal": request.system = .paypal
            case "sandbox": request.system = .sandbox
            default: request.system = .unspecified
            }
            let report = try await Clients(connection).operations.reconcile(request, options: connection.callOptions)
            agree = report.agree
            if connection.json {
                struct View: Encodable {
                    struct Item: Encodable {
                        let kind, system, paymentId, reference, here, there: String
                    }
                    let agree: Bool
                    let paymentsCompared: UInt64
                    let disagreements: [Item]
                    let notCompared: [String]
                }
                return Output.json(
                    View(
                        agree: report.agree,
                        paymentsCompared: report.paymentsCompared,
                        disagreements: report.disagreements.map {
                            .init(
                                kind: $0.kind,
                                system: Output.word($0.system),
                                paymentId: $0.paymentId,
                                reference: $0.reference,
                                here: $0.here,
                                there: $0.there
                            )
                        },
                        notCompared: report.notCompared
                    )
                )
            }
            Output.line(
                report.agree
                    ? "the books agree: \(report.paymentsCompared) payments compared"
                    : "\(report.disagreements.count) disagreements in \(report.paymentsCompared) payments compared"
            )
            if !report.disagreements.isEmpty {
                Output.table(
                    ["KIND", "SYSTEM", "PAYMENT", "REFERENCE", "HERE", "THERE"],
                    report.disagreements.map {
                        [
                            $0.kind, Output.word($0.system), $0.paymentId.isEmpty ? "-" : $0.paymentId, $0.reference,
                            $0.here, $0.there,
                        ]
                    }
                )
            }
            for line in report.notCompared { Output.line("not compared: \(Output.printable(line))") }
        }
        if !agree { throw ExitCode(1) }
    }
}
