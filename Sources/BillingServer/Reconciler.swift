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
            report.disagreements += try await compare(payments, with: provider, system: system)
            report.paymentsCompared += payments.count

            let known = Set(payments.map(\.id))
            if let taken = try await provider.takenPayments(fromMs: fromMs, toMs: toMs) {
                for record in taken {
                    guard let id = record.paymentID, !known.contains(id) else { continue }
                    // Ours but outside the period (paid late), or not ours at all.
                    let payment: Payment? =
                        (try? IDs.check(id, "payment id")) == nil ? nil : try? await store.payment(id)
                    if let payment, payment.system == system {
                        if let found = Reconciliation.compare(payment, record, system: system) {
                            report.disagreements.append(found)
                        }
                    } else {
                        report.disagreements.append(Reconciliation.unknown(record, system: system))
                    }
                }
            } else {
                report.notCompared.append(
                    "\(system.rawValue): payments taken there cannot be listed; only the payments recorded here were compared"
                )
            }

            let customers = try await store.customers(system: system)
            if let saved = try await provider.savedMethods(customers: customers) {
                let usable = try await store.usableMethodReferences(system: system)
                report.disagreements += Reconciliation.methodsNotHere(there: saved, here: usable, system: system)
            } else {
                report.notCompared.append("\(system.rawValue): saved methods cannot be listed there")
            }
        }
        return report
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
