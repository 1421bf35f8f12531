public import BillingCore
internal import Synchronization

/// billingd's own stand-in payment system, for the embedded default and
/// tests: payments are "paid" on a page billingd serves on loopback
/// (`SandboxPages`), saved methods can be charged off-session, and it
/// can be told to be slow or to fail.
///
/// Its records live in `SandboxState` (an SQLite file beside the database,
/// as durable as the ledger), so a restarted billingd finds the sandbox
/// payments it made, and a record that cannot be written fails the call.
/// Thread-safe.
public final class SandboxProvider: PaymentProvider {
    public let system = PaymentSystem.sandbox
    public let paymentTimeToLive: Duration

    /// Test knobs, also settable from configuration.
    public struct Behaviour: Sendable, Hashable {
        /// Every call waits this long first.
        public var latency: Duration = .zero
        /// Every call fails as `unavailable` (the provider is down).
        public var unavailable = false
        /// Off-session charges are declined ("card declined").
        public var declineSavedMethodCharges = false

        public init() {}
    }

    private let state: SandboxState
    private let behaviourBox: Mutex<Behaviour>
    /// The page server's base URL, e.g. "http://127.0.0.1:7081"; set once it listens.
    private let baseURL = Mutex<String>("")

    /// - Parameters:
    ///   - databasePath: the sandbox's SQLite file; nil keeps it in memory.
    ///   - legacyStateFile: the JSON state of an earlier version, imported once.
    /// - Throws: when the file cannot be opened or created.
    public init(
        databasePath: String?,
        legacyStateFile: String? = nil,
        paymentTimeToLive: Duration = .seconds(3600),
        behaviour: Behaviour = Behaviour()
    ) throws {
        state = try SandboxState(path: databasePath, importing: legacyStateFile)
        self.paymentTimeToLive = paymentTimeToLive
        self.behaviourBox = Mutex(behaviour)
    }

    public var behaviour: Behaviour {
        get { behaviourBox.withLock { $0 } }
        set { behaviourBox.withLock { $0 = newValue } }
    }

    /// Where its page is served ("http://127.0.0.1:7081"), once the server
    /// carrying `SandboxPages` listens: the redirect of every payment made after.
    public func setBaseURL(_ url: String) {
        baseURL.withLock { $0 = url }
    }

    // MARK: PaymentProvider

    public func createPayment(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderPayment {
        try await simulate()
        let base = baseURL.withLock { $0 }
        guard !base.isEmpty else { throw .unavailable("the sandbox page server is not running") }
        let sandbox = try await recorded {
            try await state.openPayment(
                paymentID: request.payment.id,
                amount: request.payment.amount,
                saveMethod: request.saveMethod,
                returnURL: request.payment.returnURL
            )
        }
        return ProviderPayment(reference: sandbox.id, redirectURL: "\(base)/pay/\(sandbox.id)")
    }

    public func chargeSavedMethod(
        _ payment: Payment,
        method: PaymentMethod
    ) async throws(ProviderError) -> ProviderCharge {
        try await simulate()
        let decline = behaviour.declineSavedMethodCharges
        let (charged, active) = try await recorded {
            try await state.charge(
                paymentID: payment.id,
                amount: payment.amount,
                methodID: method.providerReference,
                decline: decline
            )
        }
        guard active else {
            return ProviderCharge(
                reference: charged.id,
                outcome: .failed("the saved method was removed"),
                methodUnusable: true
            )
        }
        return ProviderCharge(
            reference: charged.id,
            outcome: charged.status == .declined ? .failed("card declined") : Self.outcome(charged)
        )
    }

    public func checkPayment(_ payment: Payment) async throws(ProviderError) -> ProviderOutcome {
        try await simulate()
        guard let sandbox = try await recorded({ try await state.payment(of: payment.id) }) else {
            return .failed("the sandbox has no such payment")
        }
        return Self.outcome(sandbox)
    }

    public func expirePayment(_ payment: Payment) async throws(ProviderError) -> ProviderOutcome {
        try await simulate()
        guard let sandbox = try await recorded({ try await state.expire(paymentID: payment.id) }) else {
            return .failed("expired")
        }
        return Self.outcome(sandbox)
    }

    public func findCharge(_ payment: Payment, method: PaymentMethod) async throws(ProviderError) -> ProviderCharge? {
        try await simulate()
        return try await recorded { try await state.payment(of: payment.id) }.map {
            ProviderCharge(reference: $0.id, outcome: Self.outcome($0))
        }
    }

    public func record(of payment: Payment) async throws(ProviderError) -> Reconciliation.Record? {
        try await simulate()
        return try await recorded { try await state.payment(of: payment.id) }.map(Self.record)
    }

    /// The sandbox keeps no times: every payment it took.
    public func takenPayments(fromMs: Int64, toMs: Int64) async throws(ProviderError) -> [Reconciliation.Record]? {
        try await simulate()
        return try await recorded { try await state.approvedPayments() }.map(Self.record)
    }

    /// The sandbox has no customers: every method it holds usable.
    public func savedMethods(customers: [String]) async throws(ProviderError) -> [String]? {
        try await simulate()
        return try await recorded { try await state.activeMethods() }
    }

    private static func record(_ payment: SandboxState.Payment) -> Reconciliation.Record {
        let state: Reconciliation.Record.State
        switch payment.status {
        case .open: state = .open
        case .approved: state = .paid
        case .declined, .expired: state = .failed
        }
        return Reconciliation.Record(
            paymentID: payment.paymentID,
            reference: payment.id,
            state: state,
            amountMinorUnits: payment.amountMinorUnits,
            currency: payment.currency
        )
    }

    /// The sandbox never takes money back.
    public func reversals(of payment: Payment) async throws(ProviderError) -> [ProviderReversal] {
        []
    }

    public func removeMethod(_ method: PaymentMethod) async throws(ProviderError) {
        try await simulate()
        try await recorded { try await state.deactivate(methodID: method.providerReference) }
    }

    private static func outcome(_ payment: SandboxState.Payment) -> ProviderOutcome {
        switch payment.status {
        case .open: return .pending
        case .approved:
            if payment.saveMethod, let method = payment.methodID {
                return .paid(SavedMethod(reference: method, displayName: "Sandbox card •••• 4242"))
            }
            return .paid(nil)
        case .declined: return .failed("declined on the sandbox page")
        case .expired: return .failed("expired before it was paid")
        }
    }

    private func simulate() async throws(ProviderError) {
        let behaviour = self.behaviour
        if behaviour.latency > .zero {
            try? await Task.sleep(for: behaviour.latency)
        }
        if behaviour.unavailable { throw .unavailable("the sandbox was told to be unavailable") }
    }

    /// A read or change of the sandbox's records; one that fails is the
    /// payment system failing (retried later), never a silent success.
    private func recorded<T>(_ body: () async throws -> T) async throws(ProviderError) -> T {
        do {
            return try await body()
        } catch {
            throw .unavailable("the sandbox could not read or record its state: \(error)")
        }
    }

    // MARK: The page

    struct PageView: Sendable {
        var amount: String
        var currency: String
        var status: SandboxState.Payment.Status
        var saveMethod: Bool
    }

    /// What the page shows for a sandbox payment, or nil if unknown.
    func page(_ id: String) async throws -> PageView? {
        guard let payment = try await state.payment(id: id) else { return nil }
        let currency = (try? Currency(code: payment.currency)) ?? .usd
        return PageView(
            amount: Money(minorUnits: payment.amountMinorUnits, currency).formatted,
            currency: payment.currency,
            status: payment.status,
            saveMethod: payment.saveMethod
        )
    }

    /// The person pressed Pay or Decline: what it was before (a payment
    /// already decided or expired keeps its status) and where to send them;
    /// nil for an unknown payment.
    func decide(
        _ id: String,
        approve: Bool
    ) async throws -> (before: SandboxState.Payment.Status, after: SandboxState.Payment.Status, returnURL: String)? {
        guard let (before, after) = try await state.decide(id: id, approve: approve) else { return nil }
        return (before.status, after.status, after.returnURL)
    }
}
