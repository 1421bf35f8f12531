import ArgumentParser
import BillingAPI
import BillingMessages
import Foundation

/// Who changed what in an account, and through what: the audit trail.
struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "An account's audit trail, oldest first: who changed what, and through what.",
        discussion: """
            Each line is one change (a payment created, paid or cancelled, a ledger entry, a
            method saved or made default, an order), with who made it (the caller's
            certificate, the poller, a payment system's webhook) and through what (the RPC
            method, poll, the webhook's path). An account-scoped certificate reads only its
            own account's trail.

            Examples:
              billing audit --account acc-1
              billing audit --account acc-1 --payment pay_123 --json
              billing audit --account acc-1 --since 2026-11-01T00:00:00Z --all
            """
    )

    @Option(help: "The account id.") var account: String
    @Option(help: "Only the changes to this payment.") var payment: String?
    @Option(help: "Only those at or after (ISO 8601).") var since: String?
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
            var request = BillingV1.ListAuditRequest()
            request.accountId = account
            request.paymentId = payment ?? ""
            request.sinceUnixMs = try since.map(Payments.unixMs) ?? 0
            let (found, next) = try await paging.collect { page in
                request.page = page
                let response = try await clients.operations.listAudit(request, options: connection.callOptions)
                return (response.entries, response.nextPageToken)
            }
            if connection.json {
                struct View: Encodable {
                    struct Item: Encodable {
                        let id: UInt64
                        let paymentId, subject, action, detail, actor, via: String
                        let atUnixMs: Int64
                    }
                    let entries: [Item]
                    let nextPageToken: String
                }
                return Output.json(
                    View(
                        entries: found.map {
                            .init(
                                id: $0.id,
                                paymentId: $0.paymentId,
                                subject: $0.subject,
                                action: $0.action,
                                detail: $0.detail,
                                actor: $0.actor,
                                via: $0.via,
                                atUnixMs: $0.atUnixMs
                            )
                        },
                        nextPageToken: next
                    )
                )
            }
            guard !found.isEmpty else { return Output.line("no audit entries") }
            Output.table(
                ["AT", "WHO", "VIA", "ACTION", "SUBJECT", "DETAIL"],
                found.map { [Output.time($0.atUnixMs), $0.actor, $0.via, $0.action, $0.subject, $0.detail] }
            )
            if !next.isEmpty { Output.line("next page: --page-token \(next)") }
        }
    }
}
