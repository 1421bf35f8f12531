internal import BillingCore
internal import BillingProviders

/// Our books against the payment systems' (`billing reconcile`): for a
/// period, every payment of ours a payment system could know of is read
/// there and compared (`Reconciliation.compare`); then what the system
/// took that names a payment of ours we do not hold, and the methods it
/// saved for our payers that we do not hold. Reads only, on both sides: a
/// disagreement is reported, never corrected.
struct Reconciler: Sendable {
    struct Report: Sendable {
        var disagreements: [Reconciliation.Disagreement] = []
        var paymentsCompared = 0
        var notCompared: [String] = []
    }

    /// At most this many payments per system and call: a longer period is
    /// reconciled in parts.
    static let maxPayments = 10_000
    /// Payment-system reads in flight at once, per system.
    static let concurrency = 8

    let store: any BillingStore
    let providers: ProviderRegistry

    /// - Throws: `failedPrecondition` when a system has more than
    ///   `maxPayments` payments in the period; the payment system's error when
    ///   it could not be asked (nothing is reported as agreeing then).
    func run(systems: [PaymentSystem], fromMs: Int64, toMs: Int64) async throws -> Report {
        var report = Report()
        for system in systems {
            let provider = try providers.provider(system)
            let payments = try await store.paymentsToReconcile(
                system: system,
                fromMs: fromMs,
                toMs: toMs,
                limit: Self.maxPayments + 1
            )
            guard payments.count <= Self.maxPayments else {
                throw BillingError.failedPrecondition(
                    "more than \(Self.maxPayments) \(system.rawValue) payments in the period: reconcile a shorter one"
                )
            }
            let compared = try await compare(payments, with: provider, system: system)
            report.disagreements += compared
            report.paymentsCompared += payments.count

            // What the system took, by the payment id it names: a second
            // capture of one of ours, or money for a payment we do not hold.
            let known = Dictionary(payments.map { ($0.id, $0) }) { first, _ in first }
            let flagged = Set(compared.compactMap(\.paymentID))
            if let taken = try await provider.takenPayments(fromMs: fromMs, toMs: toMs) {
                let byPayment = Dictionary(grouping: taken.filter { $0.paymentID != nil }) { $0.paymentID ?? "" }
                for (id, records) in byPayment.sorted(by: { $0.key < $1.key }) where !flagged.contains(id) {
                    var payment = known[id]
                    if payment == nil { payment = try await lookUp(id) }
                    if let found = Reconciliation.taken(records, for: payment, system: system) {
                        report.disagreements.append(found)
                    }
                }
            } else {
                report.notCompared.append(
                    "\(system.rawValue): payments taken there cannot be listed; only the payments recorded here were compared"
                )
            }

            // The customers of the payers who paid in the period.
            let customers = try await store.customers(system: system, payerIDs: Set(payments.map(\.payerID)))
            if let saved = try await provider.savedMethods(customers: customers) {
                let usable = try await store.usableMethodReferences(system: system)
                report.disagreements += Reconciliation.methodsNotHere(there: saved, here: usable, system: system)
            } else {
                report.notCompared.append("\(system.rawValue): saved methods cannot be listed there")
            }
        }
        report.disagreements.sort {
            ($0.kind.rawValue, $0.paymentID ?? "", $0.reference) < ($1.kind.rawValue, $1.paymentID ?? "", $1.reference)
        }
        return report
    }

    /// Our payment of an id a payment system named, nil when there is none
    /// (or the id is not one of ours in form); a storage failure is thrown,
    /// never taken for "none".
    private func lookUp(_ id: String) async throws -> Payment? {
        guard (try? IDs.check(id, "payment id")) != nil else { return nil }
        do {
            return try await store.payment(id)
        } catch .notFound {
            return nil
        }
    }

    /// Each payment read at its payment system, a few at a time.
    private func compare(
        _ payments: [Payment],
        with provider: any PaymentProvider,
        system: PaymentSystem
    ) async throws -> [Reconciliation.Disagreement] {
        try await withThrowingTaskGroup(of: Reconciliation.Disagreement?.self) { group in
            var found: [Reconciliation.Disagreement] = []
            var running = 0
            for payment in payments {
                if running == Self.concurrency, let next = try await group.next() {
                    running -= 1
                    if let next { found.append(next) }
                }
                group.addTask {
                    Reconciliation.compare(payment, try await provider.record(of: payment), system: system)
                }
                running += 1
            }
            for try await next in group { if let next { found.append(next) } }
            return found.sorted { ($0.paymentID ?? "", $0.reference) < ($1.paymentID ?? "", $1.reference) }
        }
    }
}
