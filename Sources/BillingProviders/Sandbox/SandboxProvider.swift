public import BillingCore
internal import Foundation
internal import Synchronization

/// billingd's own stand-in payment system, for the embedded default and
/// tests: payments are "paid" on a page billingd serves on loopback
/// (`SandboxPageServer`), saved methods can be charged off-session, and it
/// can be told to be slow or to fail.
///
/// Its state is kept in a JSON file beside the database, so a restarted
/// billingd finds the sandbox payments it made. Thread-safe (one mutex).
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

    struct SandboxPayment: Codable, Hashable {
        enum Status: String, Codable { case open, approved, declined, expired }
        var id: String
        var paymentID: String
        var amountMinorUnits: Int64
        var currency: String
        var status: Status
        var saveMethod: Bool
        var returnURL: String
        var methodID: String?
    }

    struct State: Codable {
        var payments: [String: SandboxPayment] = [:]
        var methods: [String: Bool] = [:] // method id → active
        var byPaymentID: [String: String] = [:]
    }

    private let state: Mutex<State>
    private let behaviourBox: Mutex<Behaviour>
    private let stateFile: String?
    /// The page server's base URL, e.g. "http://127.0.0.1:7081"; set once it listens.
    private let baseURL = Mutex<String>("")

    public init(stateFile: String?, paymentTimeToLive: Duration = .seconds(3600), behaviour: Behaviour = Behaviour()) {
        self.stateFile = stateFile
        self.paymentTimeToLive = paymentTimeToLive
        self.behaviourBox = Mutex(behaviour)
        var loaded = State()
        if let stateFile, let data = FileManager.default.contents(atPath: stateFile),
           let decoded = try? JSONDecoder().decode(State.self, from: data) {
            loaded = decoded
        }
        state = Mutex(loaded)
    }

    public var behaviour: Behaviour {
        get { behaviourBox.withLock { $0 } }
        set { behaviourBox.withLock { $0 = newValue } }
    }

    func setBaseURL(_ url: String) {
        baseURL.withLock { $0 = url }
    }

    // MARK: PaymentProvider

    public func createPayment(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderPayment {
        try await simulate()
        let base = baseURL.withLock { $0 }
        guard !base.isEmpty else { throw .unavailable("the sandbox page server is not running") }
        let sandbox = update { state -> SandboxPayment in
            // The same payment again (a retry) gets the same sandbox payment.
            if let existing = state.byPaymentID[request.payment.id], let payment = state.payments[existing] { return payment }
            let payment = SandboxPayment(
                id: IDs.make("sbx"), paymentID: request.payment.id, amountMinorUnits: request.payment.amount.amountMinorUnits,
                currency: request.payment.amount.currency.code, status: .open, saveMethod: request.saveMethod,
                returnURL: request.payment.returnURL, methodID: nil)
            state.payments[payment.id] = payment
            state.byPaymentID[request.payment.id] = payment.id
            return payment
        }
        return ProviderPayment(reference: sandbox.id, redirectURL: "\(base)/pay/\(sandbox.id)")
    }

    public func chargeSavedMethod(_ payment: Payment, method: PaymentMethod) async throws(ProviderError) -> ProviderCharge {
        try await simulate()
        let decline = behaviour.declineSavedMethodCharges
        return update { state -> ProviderCharge in
            if let existing = state.byPaymentID[payment.id], let charged = state.payments[existing] {
                return ProviderCharge(reference: charged.id, outcome: Self.outcome(charged))
            }
            let active = state.methods[method.providerReference] == true
            let charged = SandboxPayment(
                id: IDs.make("sbx"), paymentID: payment.id, amountMinorUnits: payment.amount.amountMinorUnits,
                currency: payment.amount.currency.code, status: active && !decline ? .approved : .declined,
                saveMethod: false, returnURL: "", methodID: method.providerReference)
            state.payments[charged.id] = charged
            state.byPaymentID[payment.id] = charged.id
            return ProviderCharge(reference: charged.id,
                                  outcome: active ? (decline ? .failed("card declined") : .paid(nil)) : .failed("the saved method was removed"))
        }
    }

    public func checkPayment(_ payment: Payment) async throws(ProviderError) -> ProviderOutcome {
        try await simulate()
        guard let sandbox = find(payment) else { return .failed("the sandbox has no such payment") }
        return Self.outcome(sandbox)
    }

    public func expirePayment(_ payment: Payment) async throws(ProviderError) -> ProviderOutcome {
        try await simulate()
        guard let id = state.withLock({ $0.byPaymentID[payment.id] }) else { return .failed("expired") }
        let sandbox = update { state -> SandboxPayment in
            if state.payments[id]?.status == .open { state.payments[id]?.status = .expired }
            return state.payments[id]!
        }
        return Self.outcome(sandbox)
    }

    public func removeMethod(_ method: PaymentMethod) async throws(ProviderError) {
        try await simulate()
        update { state in state.methods[method.providerReference] = false }
    }

    private static func outcome(_ payment: SandboxPayment) -> ProviderOutcome {
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

    private func find(_ payment: Payment) -> SandboxPayment? {
        state.withLock { state in state.byPaymentID[payment.id].flatMap { state.payments[$0] } }
    }

    // MARK: The page

    /// What the page shows for a sandbox payment, or nil if unknown.
    func page(_ id: String) -> (amount: String, currency: String, status: String, saveMethod: Bool)? {
        state.withLock { state in
            guard let payment = state.payments[id] else { return nil }
            let currency = (try? Currency(code: payment.currency)) ?? .usd
            return (Money(minorUnits: payment.amountMinorUnits, currency).formatted, payment.currency, payment.status.rawValue, payment.saveMethod)
        }
    }

    /// The person pressed Pay or Decline. Returns where to send them, or nil
    /// for an unknown payment. A payment already decided keeps its status.
    func decide(_ id: String, approve: Bool) -> String? {
        update { state -> String? in
            guard var payment = state.payments[id] else { return nil }
            if payment.status == .open {
                payment.status = approve ? .approved : .declined
                if approve && payment.saveMethod {
                    let method = IDs.make("sbpm")
                    payment.methodID = method
                    state.methods[method] = true
                }
                state.payments[id] = payment
            }
            return payment.returnURL
        }
    }

    /// Applies a change and writes the state file (atomically) before
    /// anyone sees the result, so a crash never forgets a decision shown.
    @discardableResult
    private func update<T>(_ change: (inout State) -> T) -> T {
        state.withLock { state in
            let result = change(&state)
            if let stateFile, let data = try? JSONEncoder().encode(state) {
                try? data.write(to: URL(fileURLWithPath: stateFile), options: .atomic)
            }
            return result
        }
    }
}
