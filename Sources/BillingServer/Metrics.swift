internal import BillingCore
internal import BillingProviders
internal import BillingRPC
internal import CoreMetrics
internal import Prometheus
internal import Synchronization

/// billingd's metrics, through the swift-metrics API into a Prometheus
/// registry of its own (not the process-wide `MetricsSystem`: several
/// billingd instances may run in one test process, each scraped apart).
///
/// Names and labels follow Prometheus conventions: counters end in
/// `_total`, durations are histograms in `_seconds`; every label takes few
/// values (methods, codes, systems, outcomes; never an account or payment id).
/// The values read at scrape time (connections, subscribers, the poller's
/// backlog) are set by `refresh` just before the registry is written out.
final class BillingMetrics: ServerCallObserver, Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    /// Handles made once per label set: the RPC path is hot.
    private let calls = Mutex<[CallKey: (CoreMetrics.Counter, CoreMetrics.Timer)]>([:])

    private struct CallKey: Hashable {
        let service: String
        let method: String
        let code: Int32
    }

    init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
        ]
        self.factory = factory
    }

    // MARK: RPC

    func callEnded(_ method: MethodDescriptor?, code: StatusCode, duration: Duration) {
        let key = CallKey(
            service: method?.service ?? "unknown",
            method: method?.method ?? "unknown",
            code: code.rawValue
        )
        let (counter, timer) = calls.withLock { calls in
            if let made = calls[key] { return made }
            let labels = [("service", key.service), ("method", key.method)]
            let made = (
                CoreMetrics.Counter(
                    label: "billingd_rpc_calls_total",
                    dimensions: labels + [("code", "\(code)")],
                    factory: factory
                ),
                CoreMetrics.Timer(
                    label: "billingd_rpc_call_duration_seconds",
                    dimensions: labels + [("code", "\(code)")],
                    factory: factory
                )
            )
            calls[key] = made
            return made
        }
        counter.increment()
        timer.record(duration: duration)
    }

    // MARK: Storage and payments

    /// Counts what each committed decision did, and times every transaction.
    var storeObserver: StoreObserver {
        StoreObserver(
            transactionEnded: { [self] kind, duration, succeeded in
                CoreMetrics.Timer(
                    label: "billingd_storage_transaction_duration_seconds",
                    dimensions: [
                        ("backend", "sqlite"), ("kind", kind.rawValue), ("result", succeeded ? "ok" : "error"),
                    ],
                    factory: factory
                ).record(duration: duration)
            },
            committed: { [self] effects in
                for effect in effects { count(effect) }
            },
            claimConflicts: { [self] count in pollerClaimConflicts(count) }
        )
    }

    private func count(_ effect: Effect) {
        switch effect {
        case .insertPayment(let payment):
            counter(
                "billingd_payments_created_total",
                [
                    ("purpose", payment.purpose.rawValue), ("option", payment.optionKind.rawValue),
                    ("system", payment.system?.rawValue ?? "none"),
                ]
            )
        case .finishPayment(let payment):
            counter(
                "billingd_payment_transitions_total",
                [
                    ("option", payment.optionKind.rawValue), ("system", payment.system?.rawValue ?? "none"),
                    ("outcome", payment.status.rawValue),
                ]
            )
        case .ledger(let entry):
            let kind = entry.key.split(separator: ":").first.map(String.init) ?? "other"
            counter("billingd_ledger_entries_total", [("kind", kind)])
        case .event:
            counter("billingd_events_appended_total", [])
        case .insertInvoice:
            counter("billingd_invoices_issued_total", [])
        case .autoRenewalAttempt(_, _, let outcome):
            // "renewed", "charging" or "failed": the outcome's first word.
            counter("billingd_auto_renewal_attempts_total", [("outcome", String(outcome.prefix { $0 != " " }))])
        case .insertAccount, .insertPayer, .attachReference, .insertMethod, .updateMethod, .insertRenewalOrder,
            .updateRenewalOrder, .saveService, .insertMigrationOrder, .updateMigrationOrder, .insertNotification,
            .payerCustomer, .rememberKey, .audit:
            break
        }
    }

    // MARK: Poller

    /// One check by the poller: `paid`, `cancelled`, `new` (asked again
    /// later) or `failed` (the payment system could not be asked).
    func pollerChecked(_ outcome: String) {
        counter("billingd_poller_checks_total", [("outcome", outcome)])
    }

    /// Due payments another poller claimed between the look and the claim.
    func pollerClaimConflicts(_ count: Int) {
        guard count > 0 else { return }
        CoreMetrics.Counter(label: "billingd_poller_claim_conflicts_total", dimensions: [], factory: factory)
            .increment(by: count)
    }

    // MARK: Payment systems

    func providerCall(_ system: PaymentSystem, _ operation: String, _ result: String, _ duration: Duration) {
        let labels = [("system", system.rawValue), ("operation", operation)]
        counter("billingd_payment_system_calls_total", labels + [("result", result)])
        CoreMetrics.Timer(label: "billingd_payment_system_call_duration_seconds", dimensions: labels, factory: factory)
            .record(duration: duration)
    }

    // MARK: Streams

    func eventsDelivered(_ count: Int) {
        CoreMetrics.Counter(label: "billingd_stream_events_delivered_total", dimensions: [], factory: factory)
            .increment(by: count)
    }

    // MARK: Read at scrape time

    struct Snapshot: Sendable {
        var connections: (unauthenticated: Int, privileged: Int, ordinary: Int)
        var subscribers: Int
        var dueNow: Int
        var oldestDueLag: Duration
    }

    /// The gauges set to `snapshot`, then the registry in Prometheus's text format.
    func scrape(_ snapshot: Snapshot) -> [UInt8] {
        gauge("billingd_rpc_connections", [("role", "unauthenticated")], snapshot.connections.unauthenticated)
        gauge("billingd_rpc_connections", [("role", "privileged")], snapshot.connections.privileged)
        gauge("billingd_rpc_connections", [("role", "account")], snapshot.connections.ordinary)
        gauge("billingd_stream_subscribers", [], snapshot.subscribers)
        gauge("billingd_poller_due_payments", [], snapshot.dueNow)
        let lag = snapshot.oldestDueLag
        CoreMetrics.Gauge(label: "billingd_poller_oldest_due_lag_seconds", dimensions: [], factory: factory)
            .record(Double(lag.components.seconds) + Double(lag.components.attoseconds) / 1e18)
        return registry.emitToBuffer()
    }

    private func counter(_ label: String, _ dimensions: [(String, String)]) {
        CoreMetrics.Counter(label: label, dimensions: dimensions, factory: factory).increment()
    }

    private func gauge(_ label: String, _ dimensions: [(String, String)], _ value: Int) {
        CoreMetrics.Gauge(label: label, dimensions: dimensions, factory: factory).record(value)
    }
}

/// A payment system whose every call is counted and timed (`BillingMetrics`).
struct MeasuredProvider: PaymentProvider {
    let base: any PaymentProvider
    let metrics: BillingMetrics

    var system: PaymentSystem { base.system }
    var paymentTimeToLive: Duration { base.paymentTimeToLive }

    private func measure<T>(
        _ operation: String,
        _ body: () async throws(ProviderError) -> T
    ) async throws(ProviderError) -> T {
        let started = ContinuousClock.now
        do {
            let result = try await body()
            metrics.providerCall(base.system, operation, "ok", ContinuousClock.now - started)
            return result
        } catch {
            let result: String
            switch error {
            case .unavailable: result = "unavailable"
            case .rejected: result = "rejected"
            case .malformed: result = "malformed"
            case .notConfigured: result = "not_configured"
            }
            metrics.providerCall(base.system, operation, result, ContinuousClock.now - started)
            throw error
        }
    }

    func createPayment(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderPayment {
        try await measure("create_payment") { () async throws(ProviderError) in try await base.createPayment(request) }
    }

    func chargeSavedMethod(_ payment: Payment, method: PaymentMethod) async throws(ProviderError) -> ProviderCharge {
        try await measure("charge_saved_method") { () async throws(ProviderError) in
            try await base.chargeSavedMethod(payment, method: method)
        }
    }

    func checkPayment(_ payment: Payment) async throws(ProviderError) -> ProviderOutcome {
        try await measure("check_payment") { () async throws(ProviderError) in try await base.checkPayment(payment) }
    }

    func expirePayment(_ payment: Payment) async throws(ProviderError) -> ProviderOutcome {
        try await measure("expire_payment") { () async throws(ProviderError) in try await base.expirePayment(payment) }
    }

    func removeMethod(_ method: PaymentMethod) async throws(ProviderError) {
        try await measure("remove_method") { () async throws(ProviderError) in try await base.removeMethod(method) }
    }

    func findCharge(_ payment: Payment, method: PaymentMethod) async throws(ProviderError) -> ProviderCharge? {
        try await measure("find_charge") { () async throws(ProviderError) in
            try await base.findCharge(payment, method: method)
        }
    }

    func reversals(of payment: Payment) async throws(ProviderError) -> [ProviderReversal] {
        try await measure("reversals") { () async throws(ProviderError) in try await base.reversals(of: payment) }
    }

    func record(of payment: Payment) async throws(ProviderError) -> Reconciliation.Record? {
        try await measure("record") { () async throws(ProviderError) in try await base.record(of: payment) }
    }

    func takenPayments(fromMs: Int64, toMs: Int64) async throws(ProviderError) -> [Reconciliation.Record]? {
        try await measure("taken_payments") { () async throws(ProviderError) in
            try await base.takenPayments(fromMs: fromMs, toMs: toMs)
        }
    }

    func savedMethods(customers: [String]) async throws(ProviderError) -> [String]? {
        try await measure("saved_methods") { () async throws(ProviderError) in
            try await base.savedMethods(customers: customers)
        }
    }
}
