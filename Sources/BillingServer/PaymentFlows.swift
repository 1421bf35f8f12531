internal import BillingCore
internal import BillingProviders
internal import Logging

/// The payment systems billingd can use, by system.
struct ProviderRegistry: Sendable {
    let providers: [PaymentSystem: any PaymentProvider]

    func provider(_ system: PaymentSystem) throws(ProviderError) -> any PaymentProvider {
        guard let provider = providers[system] else { throw .notConfigured(system) }
        return provider
    }

    var systems: [PaymentSystem] {
        PaymentSystem.allCases.filter { providers[$0] != nil }
    }
}

/// What happens to a payment between its record and its end, shared by the
/// RPC services, the poller and refreshes. Every status change goes through
/// the store's one transition.
struct PaymentFlows: Sendable {
    let store: any BillingStore
    let providers: ProviderRegistry
    let logger: Logger

    /// Starts a New payment at its payment system, if it has one and was not
    /// started yet: the hosted page for a payment-system payment, the charge
    /// for a saved method. Safe to call again (after a timeout, on a retry
    /// with the same idempotency key): providers see our payment id as their
    /// idempotency key.
    func start(_ payment: Payment) async throws -> Payment {
        guard payment.status == .new, payment.providerReference.isEmpty, let system = payment.system else { return payment }
        let provider = try providers.provider(system)
        do {
            switch payment.optionKind {
            case .paymentSystem:
                let payer = try await store.payer(payment.payerID)
                let saving = payment.savedPaymentMethodID != nil
                let customer = saving ? try await store.payerCustomer(payerID: payer.id, system: system) : nil
                let created = try await provider.createPayment(
                    ProviderPaymentRequest(payment: payment, payer: payer, saveMethod: saving, customerReference: customer))
                if let made = created.customerReference, made != customer {
                    try await store.setPayerCustomer(payerID: payer.id, system: system, reference: made)
                }
                return try await attach(payment, reference: created.reference, redirectURL: created.redirectURL)
            case .savedMethod:
                guard let methodID = payment.paymentMethodID else { return payment }
                let method = try await store.paymentMethod(methodID)
                let charge = try await provider.chargeSavedMethod(payment, method: method)
                let attached = try await attach(payment, reference: charge.reference, redirectURL: "")
                if attached.status == .cancelled, case .paid = charge.outcome {
                    // Cancel refuses a charge in flight and the poller looks a charge up
                    // before it gives up, so this cannot happen; if it does, say so loudly.
                    logger.critical("a charge succeeded for a payment already Cancelled: credit it by hand",
                                    metadata: ["payment": "\(payment.id)", "reference": "\(charge.reference)"])
                }
                return try await apply(charge, to: attached)
            case .invoice, .balance:
                return payment
            }
        } catch ProviderError.rejected(let why, let requestID) {
            // A definitive refusal: the payment system answered, and nothing was
            // or will be taken. The payment ends here (its method Failed, an
            // error notification), not later by a poller that would start it
            // again once the cause is fixed; the caller still hears the refusal.
            _ = try await transition(payment, .cancelled("refused by \(system.displayName): \(why.prefix(200))"))
            throw ProviderError.rejected(why, requestID: requestID)
        }
    }

    /// The provider's reference, recorded. If the payment left New meanwhile
    /// (the poller started the same payment, under the same idempotency key,
    /// and finished it first), its current state is the answer.
    private func attach(_ payment: Payment, reference: String, redirectURL: String) async throws(BillingError) -> Payment {
        do {
            return try await store.attachProviderReference(paymentID: payment.id, reference: reference, redirectURL: redirectURL)
        } catch {
            guard case .failedPrecondition = error else { throw error }
            let current = try await store.payment(payment.id)
            guard current.status != .new else { throw error }
            return current
        }
    }

    /// Asks the payment system now: a New payment's state, or a Paid one's
    /// refunds and disputes.
    func refresh(_ payment: Payment) async throws -> Payment {
        if payment.status == .paid {
            try await syncReversals(payment)
            return payment
        }
        guard payment.status == .new, let system = payment.system else { return payment }
        if payment.providerReference.isEmpty { return try await start(payment) }
        let outcome = try await providers.provider(system).checkPayment(payment)
        return try await apply(outcome, to: payment)
    }

    /// Cancels a New payment: expires it at the payment system first, so it
    /// cannot be paid after we call it Cancelled. If the person paid just
    /// before, it becomes Paid instead.
    ///
    /// A payment with a payment system but no provider reference yet may be
    /// starting right now (a saved-method charge in flight, an answer lost in
    /// a crash): nothing at the payment system can be expired by reference,
    /// and the charge may still succeed. It is refused; the start's answer or
    /// the poller ends it, and a charge that succeeded is credited.
    func cancel(_ payment: Payment, reason: String, by canceller: TransitionOutcome.Canceller) async throws -> Payment {
        guard payment.status == .new else {
            throw BillingError.failedPrecondition("payment \(payment.id) is \(payment.status), not New")
        }
        if let system = payment.system, payment.providerReference.isEmpty {
            throw BillingError.failedPrecondition(
                "payment \(payment.id) is being \(payment.optionKind == .savedMethod ? "charged" : "started") at \(system.rawValue) and cannot be cancelled until it answers; refresh it later")
        }
        if let system = payment.system {
            let outcome = try await providers.provider(system).expirePayment(payment)
            switch outcome {
            case .paid:
                return try await apply(outcome, to: payment)
            case .pending, .held:
                throw BillingError.failedPrecondition(
                    "payment \(payment.id) is settling at \(system.rawValue) and can no longer be cancelled; it ends Paid or Cancelled on its own")
            case .failed:
                break
            }
        }
        return try await transition(payment, .cancelled(reason, by: canceller))
    }

    /// Records every refund, chargeback and dispute won the payment system
    /// reports for a Paid payment, each once (the store keys them by the
    /// payment system's id): a webhook, a refresh or reconciliation may call
    /// it any number of times.
    func syncReversals(_ payment: Payment) async throws {
        guard payment.status == .paid, let system = payment.system, !payment.providerReference.isEmpty else { return }
        for found in try await providers.provider(system).reversals(of: payment) {
            let reversal = Reversal(paymentID: payment.id, kind: found.kind, amount: found.amount, reference: found.reference, reason: found.reason)
            if try await store.recordReversal(reversal) {
                logger.notice("payment reversed", metadata: ["payment": "\(payment.id)", "kind": "\(found.kind.rawValue)",
                                                             "amount": "\(found.amount)", "reference": "\(found.reference)"])
            }
        }
    }

    /// A saved-method charge that got no answer, past its grace (the poller):
    /// looked up at the payment system by our payment id before anything is
    /// cancelled. Found: its state is the payment's (a charge that succeeded
    /// is credited); not there: nothing was taken, Cancelled; no answer:
    /// throws, and the payment stays New. A hosted payment whose page was
    /// never created is Cancelled at once: nobody could have paid it.
    func giveUpStarting(_ payment: Payment) async throws -> Payment {
        guard payment.status == .new, payment.providerReference.isEmpty, let system = payment.system,
              payment.optionKind == .savedMethod, let methodID = payment.paymentMethodID else {
            return try await transition(payment, .cancelled("the payment system could not start this payment"))
        }
        let method = try await store.paymentMethod(methodID)
        guard let found = try await providers.provider(system).findCharge(payment, method: method) else {
            return try await transition(payment, .cancelled("\(system.displayName) has no record of this charge; nothing was taken"))
        }
        logger.notice("an unanswered charge was found at the payment system", metadata: ["payment": "\(payment.id)", "reference": "\(found.reference)"])
        let attached = found.reference.isEmpty ? payment : try await attach(payment, reference: found.reference, redirectURL: "")
        return try await apply(found, to: attached)
    }

    /// A charge's answer, with a refused method marked Failed.
    private func apply(_ charge: ProviderCharge, to payment: Payment) async throws(BillingError) -> Payment {
        guard charge.methodUnusable, case .failed(let why) = charge.outcome else { return try await apply(charge.outcome, to: payment) }
        var outcome = TransitionOutcome.cancelled(why)
        outcome.chargedMethodUnusable = true
        return try await transition(payment, outcome)
    }

    /// A provider's answer applied through the store's single transition.
    func apply(_ outcome: ProviderOutcome, to payment: Payment) async throws(BillingError) -> Payment {
        switch outcome {
        case .pending, .held:
            return payment
        case .paid(let saved?):
            return try await transition(payment, .paid(savedMethodReference: saved.reference, displayName: saved.displayName))
        case .paid(nil):
            return try await transition(payment, .paid)
        case .failed(let reason):
            return try await transition(payment, .cancelled(reason))
        }
    }

    /// The transition; if someone else (poller, webhook, operator) moved the
    /// payment first, its current state is the answer.
    func transition(_ payment: Payment, _ outcome: TransitionOutcome) async throws(BillingError) -> Payment {
        do {
            let result = try await store.transition(paymentID: payment.id, outcome)
            if case .applied(let after) = result {
                logger.info("payment finished", metadata: ["payment": "\(after.id)", "status": "\(after.status)"])
            }
            return result.payment
        } catch .invalidTransition {
            return try await store.payment(payment.id)
        }
    }
}
