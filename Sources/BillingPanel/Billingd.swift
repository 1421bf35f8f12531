internal import BillingAPI
internal import BillingCore
internal import BillingMessages
internal import BillingRPC
internal import BillingTLS
internal import BillingTransport
internal import Foundation
internal import NIOPosix

/// billingd as the panel reaches it: the generated clients over mutual TLS,
/// as an internal service (`billing://internal/...`).
///
/// Why the internal role and not account-scoped certificates: one panel
/// process serves every account, and a certificate per account would have to
/// be issued by a CA the panel holds, which is the same trust as the internal
/// role with more moving parts. So the panel is trusted like any internal
/// service, and it scopes every call to the signed-in account itself: it
/// names that account in each request and checks that what billingd returns
/// for an id (a migration order, a payer) belongs to it.
///
/// Two connections: the pages' calls on one, the live history's watches on
/// the other, so a page of many open watches never waits for a stream slot.
struct Billingd: Sendable {
    let balance: BillingV1.BalanceClient
    let methods: BillingV1.PaymentMethodsClient
    let renewal: BillingV1.RenewalClient
    let migration: BillingV1.MigrationPaymentClient
    let accounts: BillingV1.AccountsClient
    let watches: BillingV1.BalanceClient
    let callTimeout: Duration

    init(_ configuration: PanelConfiguration) throws {
        guard let address = HostPort(configuration.billingd.address) else {
            throw PanelConfigurationError(problems: ["billingd.address is not host:port"])
        }
        let files = configuration.tlsFiles
        for (what, path) in [("certificate", files.certificate), ("key", files.privateKey), ("CA", files.ca)]
        where !FileManager.default.isReadableFile(atPath: path) {
            throw PanelConfigurationError(problems: [
                "cannot read billingd's client \(what) \(path): run billing-panel from the folder where billingd runs (its development certificates are in billingd-data/tls), or set billingd.certificate, privateKey and ca"
            ])
        }
        let serverName =
            configuration.billingd.serverName.isEmpty
            ? (["127.0.0.1", "::1", "localhost"].contains(address.host) ? "localhost" : address.host)
            : configuration.billingd.serverName
        let context = try TLSContext(
            TLSConfiguration(
                role: .client(serverName: serverName),
                certificateChainPath: files.certificate,
                privateKeyPath: files.privateKey,
                trustRootsPath: files.ca
            )
        )
        func transport() -> TTRPCClient {
            TTRPCClient(
                host: address.host,
                port: address.port,
                tls: context,
                group: MultiThreadedEventLoopGroup.singleton,
                connectTimeout: .seconds(5)
            )
        }
        let pages = transport()
        balance = .init(transport: pages)
        methods = .init(transport: pages)
        renewal = .init(transport: pages)
        migration = .init(transport: pages)
        accounts = .init(transport: pages)
        watches = .init(transport: transport())
        callTimeout = .milliseconds(Int64(configuration.billingd.callTimeoutSeconds * 1000))
    }

    var options: CallOptions { CallOptions(timeout: callTimeout) }

    /// Options of a call that must happen once however often the person presses.
    func once(_ key: String) -> CallOptions { options.idempotencyKey(key) }
}

/// What went wrong with a call to billingd, for the person at the page: the
/// HTTP status of the page and a sentence they can act on.
struct Problem: Error {
    let status: Int
    let message: String
    /// billingd refused the input itself (INVALID_ARGUMENT): the form shows it.
    let isInputRefused: Bool

    init(status: Int, _ message: String, isInputRefused: Bool = false) {
        self.status = status
        self.message = message
        self.isInputRefused = isInputRefused
    }

    init(_ error: any Error) {
        guard let error = error as? RPCError else {
            self.init(
                status: 502,
                "billingd could not be asked (\(String(describing: error).prefix(200))); nothing changed."
            )
            return
        }
        switch error.code {
        case .invalidArgument:
            self.init(status: 400, error.message, isInputRefused: true)
        case .failedPrecondition where error.message.contains("idempotency key"):
            // The same form sent again with other values (edited in another tab, say).
            self.init(
                status: 409,
                "This form was already sent with other values; nothing changed. Check it and press again."
            )
        case .failedPrecondition, .alreadyExists, .outOfRange:
            self.init(status: 409, error.message)
        case .notFound:
            self.init(status: 404, "Not found: \(error.message)")
        case .unavailable, .deadlineExceeded:
            self.init(status: 503, "billingd cannot be reached right now; nothing changed. Try again in a moment.")
        case .resourceExhausted:
            self.init(status: 503, "billingd is busy; nothing changed. Try again in a moment.")
        case .permissionDenied, .unauthenticated:
            self.init(status: 502, "The panel's certificate is not allowed to do this (\(error.message)).")
        default:
            self.init(status: 502, "billingd could not do this (\(error.code)): \(error.message)")
        }
    }
}

/// How billingd's values read on a page.
enum Display {
    /// The header's balance: what is held for renewals awaiting payment said too.
    static func balance(_ response: BillingV1.GetBalanceResponse) -> String {
        guard let held = response.held, held.amountMinorUnits != 0 else { return money(response.balance) }
        return "\(money(response.balance)) (\(money(held)) held)"
    }

    /// What paying from the balance may use.
    static func available(_ response: BillingV1.GetBalanceResponse) -> String {
        guard let held = response.held, held.amountMinorUnits != 0 else { return money(response.balance) }
        return "\(money(response.available)) available"
    }

    static func money(_ money: BillingV1.Money?) -> String {
        guard let money else { return "-" }
        guard let currency = try? Currency(code: money.currency) else {
            return "\(money.amountMinorUnits) (\(money.currency.prefix(8)))"
        }
        return Money(minorUnits: money.amountMinorUnits, currency).description
    }

    static func status(_ status: BillingV1.PaymentStatus) -> (name: String, text: String) {
        switch status {
        case .new: ("new", "New")
        case .paid: ("paid", "Paid")
        case .cancelled: ("cancelled", "Cancelled")
        default: ("unknown", "Unknown")
        }
    }

    static func purpose(_ purpose: BillingV1.PaymentPurpose) -> String {
        switch purpose {
        case .topUp: "Top-up"
        case .renewal: "Renewal"
        case .migration: "Migration"
        default: "-"
        }
    }

    static func system(_ system: BillingV1.PaymentSystem) -> String {
        switch system {
        case .stripe: "Stripe"
        case .paypal: "PayPal"
        case .sandbox: "Sandbox"
        default: "-"
        }
    }

    static func method(_ payment: BillingV1.Payment) -> String {
        switch payment.optionKind {
        case .invoice: payment.invoiceNumber.isEmpty ? "Invoice" : "Invoice \(payment.invoiceNumber)"
        case .savedMethod: "Saved method (\(system(payment.system)))"
        case .paymentSystem: system(payment.system)
        case .balance: "Balance"
        default: "-"
        }
    }

    /// "2026-11-28 06:15 UTC": one zone for everyone, said on the page.
    static func time(_ unixMs: Int64) -> String {
        guard unixMs > 0 else { return "-" }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        return formatter.string(from: Date(timeIntervalSince1970: Double(unixMs) / 1000)) + " UTC"
    }

    /// "2026-11-28".
    static func day(_ unixMs: Int64) -> String {
        String(time(unixMs).prefix(10))
    }

    static func payer(_ payer: BillingV1.Payer) -> String {
        payer.email.isEmpty ? payer.displayName : "\(payer.displayName) <\(payer.email)>"
    }
}
