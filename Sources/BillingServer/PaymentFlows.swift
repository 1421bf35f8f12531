internal import BillingCore
internal import BillingProviders
internal import Logging
internal import Synchronization

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

/// What happens to a payment between its record and its end, and after:
/// starting it at its payment system, checking it there, cancelling it,
/// following its refunds and disputes. The RPC services, the poller and the
/// webhooks use these operations and nothing beneath them; every status
/// change goes through the store's one transition (`PaymentMachine.finish`).
///
/// "Check this payment" is one operation, `check`: the poller calls it when
/// a payment is due, RefreshPayment when a person asks, a webhook when the
/// payment system says something happened, and `cancel` with the intent to
/// end the payment. Only the poller decides *when*.
struct PaymentFlows: Sendable {
    struct Settings: Sendable {
        /// How long a hosted payment the provider never created may wait
        /// before it is cancelled (nobody could have seen its page).
        var unstartedGrace: Duration = .seconds(600)
        /// How long a saved-method charge with no answer is asked again
        /// before it is looked up and, if not found, cancelled.
        var unstartedChargeGrace: Duration = .seconds(5 * 3600)
        /// How long a payment may be held for the merchant (a PayPal capture
        /// PENDING for the receiving account's settings) before the operator
        /// is told, in the log at critical level (once per payment and run).
        var heldNotice: Duration = .seconds(3600)
    }

    /// Why a payment is checked: to learn its state, or to end it.
    enum Intent: Sendable {
        /// The poller, on its schedule: whatever the payment system says is
        /// applied; a payment not started within its grace is given up (after
        /// a lookup), one past its time to live is expired first.
        case poll
        /// A refresh or a webhook: started if it was not, else asked; a Paid
        /// payment's reversals are recorded. Never expires or gives up a
        /// payment: that is the poller's, on its schedule.
        case observe
        /// A cancel by the payer or support: expired at the payment system
        /// first, so it cannot be paid after it is called Cancelled.
        case cancel(reason: String, by: TransitionOutcome.Canceller)
    }

    private let store: any BillingStore
    private let providers: ProviderRegistry
    private let clock: any BillingClock
    private let settings: Settings
    private let logger: Logger
    /// Held payments already reported to the operator by this process.
    private let reportedHeld = Reported()

    init(
        store: any BillingStore,
        providers: ProviderRegistry,
        clock: any BillingClock,
        settings: Settings = Settings(),
        logger: Logger
    ) {
        self.store = store
        self.providers = providers
        self.clock = clock
        self.settings = settings
        self.logger = logger
    }

    /// The payment systems configured, in a fixed order.
    var systems: [PaymentSystem] { providers.systems }

    /// - Throws: `ProviderError.notConfigured` for a system billingd does not use.
    func requireSystem(_ system: PaymentSystem) throws(ProviderError) {
        _ = try providers.provider(system)
    }

    // MARK: Starting

    /// Starts a New payment at its payment system, if it has one and was not
    /// started yet: the hosted page for a payment-system payment, the charge
    /// for a saved method. Safe to call again (after a timeout, on a retry
    /// with the same idempotency key): providers see our payment id as their
    /// idempotency key.
    func start(_ payment: Payment) async throws -> Payment {
        guard payment.status == .new, payment.providerReference.isEmpty, let system = payment.system else {
            return payment
        }
        let provider = try providers.provider(system)
        do {
            switch payment.optionKind {
            case .paymentSystem:
                let payer = try await store.payer(payment.payerID)
                let saving = payment.savedPaymentMethodID != nil
                let customer = saving ? try await store.payerCustomer(payerID: payer.id, system: system) : nil
                let created = try await provider.createPayment(
                    ProviderPaymentRequest(
                        payment: payment,
                        payer: payer,
                        saveMethod: saving,
                        customerReference: customer
                    )
                )
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
                    logger.critical(
                        "a charge succeeded for a payment already Cancelled: credit it by hand",
                        metadata: ["payment": "\(payment.id)", "reference": "\(charge.reference)"]
                    )
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
    private func attach(
        _ payment: Payment,
        reference: String,
        redirectURL: String
    ) async throws(BillingError) -> Payment {
        do {
            return try await store.attachProviderReference(
                paymentID: payment.id,
                reference: reference,
                redirectURL: redirectURL
            )
        } catch {
            guard case .failedPrecondition = error else { throw error }
            let current = try await store.payment(payment.id)
            guard current.status != .new else { throw error }
            return current
        }
    }

    // MARK: Checking

    /// Checks a payment at its payment system and applies the answer, for
    /// whatever `intent`:
    /// - a Paid payment: its refunds and disputes are recorded (observe), or
    ///   the cancel is refused;
    /// - a payment not started yet: started, or given up after its grace
    ///   (poll; looked up first: a charge may have happened unanswered); a
    ///   cancel is refused, since the start may be in flight;
    /// - a started one: expired first when it is being cancelled or (poll) is
    ///   past its time to live, so it cannot be paid after it is called
    ///   Cancelled (a payment made just before ends Paid instead); else asked.
    ///
    /// - Throws: `failedPrecondition` when a cancel cannot be done (not New,
    ///   in flight, settling); the payment system's error when it could not
    ///   be asked (the payment stays New).
    func check(_ payment: Payment, _ intent: Intent = .observe) async throws -> Payment {
        let cancelling: (reason: String, by: TransitionOutcome.Canceller)?
        if case .cancel(let reason, let by) = intent { cancelling = (reason, by) } else { cancelling = nil }
        guard payment.status == .new else {
            if cancelling != nil {
                throw BillingError.failedPrecondition("payment \(payment.id) is \(payment.status), not New")
            }
            if payment.status == .paid, case .observe = intent { try await syncReversals(payment) }
            return payment
        }
        guard let system = payment.system else {
            // An invoice: money arriving (an operator settles) or a cancel ends
            // it, and the poller voids it once it is unpaid past its due date
            // and grace (its only scheduled check, set when it was issued).
            if let cancelling { return try await transition(payment, .cancelled(cancelling.reason, by: cancelling.by)) }
            guard case .poll = intent, payment.optionKind == .invoice, let voidAt = payment.nextCheckAtMs,
                clock.nowMs >= voidAt
            else { return payment }
            return try await transition(
                payment,
                .cancelled(
                    "invoice \(payment.invoiceNumber ?? payment.id) was not paid by its due date (void since \(Timestamps.day(voidAt)))",
                    by: .paymentSystem
                )
            )
        }
        let now = clock.nowMs
        var payment = payment
        if payment.providerReference.isEmpty {
            if cancelling != nil {
                throw BillingError.failedPrecondition(
                    "payment \(payment.id) is being \(payment.optionKind == .savedMethod ? "charged" : "started") at \(system.rawValue) and cannot be cancelled until it answers; refresh it later"
                )
            }
            // The payment system was down when the payment was made (or its
            // creator is starting it right now: the provider's idempotency key
            // makes both starts one). A hosted payment nobody could see is
            // safe to cancel soon; a charge may have happened unanswered, so
            // it is asked again for much longer, and looked up before it ends.
            let grace = payment.optionKind == .savedMethod ? settings.unstartedChargeGrace : settings.unstartedGrace
            if now - payment.createdAtMs > grace.milliseconds {
                // Past its grace a start is never sent again (a payment
                // system's key memory may be gone, and a page made now could
                // be paid after the poller gives the payment up): the poller
                // looks it up and ends it; a refresh or webhook leaves it be.
                guard case .poll = intent else { return payment }
                return try await giveUpStarting(payment)
            }
            payment = try await start(payment)
            guard payment.status == .new, !payment.providerReference.isEmpty else { return payment }
        }
        let provider = try providers.provider(system)
        if let cancelling {
            switch try await provider.expirePayment(payment) {
            case .paid(let saved):
                return try await apply(.paid(saved), to: payment)
            case .pending, .held:
                throw BillingError.failedPrecondition(
                    "payment \(payment.id) is settling at \(system.rawValue) and can no longer be cancelled; it ends Paid or Cancelled on its own"
                )
            case .failed:
                return try await transition(payment, .cancelled(cancelling.reason, by: cancelling.by))
            }
        }
        let outcome: ProviderOutcome
        if case .poll = intent, now - payment.createdAtMs >= provider.paymentTimeToLive.milliseconds {
            do {
                outcome = try await provider.expirePayment(payment)
            } catch {
                // An expiry that keeps failing (Stripe replays a 5xx for its
                // key) must not hide a payment made meanwhile: check it.
                logger.warning(
                    "expiry failed; checking instead",
                    metadata: ["payment": "\(payment.id)", "error": "\(error)"]
                )
                outcome = try await provider.checkPayment(payment)
            }
        } else {
            outcome = try await provider.checkPayment(payment)
        }
        // Still New after an expiry means settling (the money is on its way
        // and cannot be stopped): it ends Paid or Cancelled at the provider,
        // so it is checked again; cancelling could lose a credit.
        if case .held(let why) = outcome, now - payment.createdAtMs >= settings.heldNotice.milliseconds,
            reportedHeld.insert(payment.id)
        {
            logger.critical(
                "a payment waits for the merchant at its payment system: act there, or it never completes",
                metadata: ["payment": "\(payment.id)", "system": "\(system.rawValue)", "reason": "\(why)"]
            )
        }
        return try await apply(outcome, to: payment)
    }

    /// The payment a payment system's webhook names, checked (nil when it is
    /// not a payment of ours at that system).
    func check(paymentID: String, system: PaymentSystem) async throws -> Payment? {
        let payment: Payment
        do {
            payment = try await store.payment(paymentID)
        } catch .notFound {
            return nil
        }
        guard payment.system == system else { return nil }
        return try await check(payment)
    }

    /// Cancels a New payment: the check with the intent to end it.
    func cancel(_ payment: Payment, reason: String, by canceller: TransitionOutcome.Canceller) async throws -> Payment {
        try await check(payment, .cancel(reason: reason, by: canceller))
    }

    /// An invoice's money arrived (an operator says so): Paid, with the
    /// bank's reference when given. Settling a Paid invoice again changes
    /// nothing; a Cancelled one cannot be.
    func settleInvoice(_ payment: Payment, reference: String) async throws -> Payment {
        switch payment.status {
        case .paid: return payment
        case .cancelled:
            throw BillingError.failedPrecondition("invoice \(payment.id) was cancelled; it cannot be settled")
        case .new: break
        }
        if !reference.isEmpty {
            _ = try await store.attachProviderReference(paymentID: payment.id, reference: reference, redirectURL: "")
        }
        return try await transition(payment, .paid)
    }

    /// Records every refund, chargeback and dispute won the payment system
    /// reports for a Paid payment, each once (keyed by the payment system's
    /// id): a webhook, a refresh or reconciliation may call it any number of
    /// times.
    func syncReversals(_ payment: Payment) async throws {
        guard payment.status == .paid, let system = payment.system, !payment.providerReference.isEmpty else { return }
        for found in try await providers.provider(system).reversals(of: payment) {
            let reversal = Reversal(
                paymentID: payment.id,
                kind: found.kind,
                amount: found.amount,
                reference: found.reference,
                reason: found.reason
            )
            if try await store.recordReversal(reversal) {
                logger.notice(
                    "payment reversed",
                    metadata: [
                        "payment": "\(payment.id)", "kind": "\(found.kind.rawValue)",
                        "amount": "\(found.amount)", "reference": "\(found.reference)",
                    ]
                )
            }
        }
    }

    /// A payment that could not be started within its grace: a saved-method
    /// charge that got no answer is looked up at the payment system by our
    /// payment id before anything is cancelled. Found: its state is the
    /// payment's (a charge that succeeded is credited); not there: nothing
    /// was taken, Cancelled; no answer: throws, and the payment stays New. A
    /// hosted payment whose page was never created is Cancelled at once:
    /// nobody could have paid it.
    private func giveUpStarting(_ payment: Payment) async throws -> Payment {
        guard let system = payment.system, payment.optionKind == .savedMethod, let methodID = payment.paymentMethodID
        else {
            return try await transition(payment, .cancelled("the payment system could not start this payment"))
        }
        let method = try await store.paymentMethod(methodID)
        guard let found = try await providers.provider(system).findCharge(payment, method: method) else {
            return try await transition(
                payment,
                .cancelled("\(system.displayName) has no record of this charge; nothing was taken")
            )
        }
        logger.notice(
            "an unanswered charge was found at the payment system",
            metadata: ["payment": "\(payment.id)", "reference": "\(found.reference)"]
        )
        let attached =
            found.reference.isEmpty ? payment : try await attach(payment, reference: found.reference, redirectURL: "")
        return try await apply(found, to: attached)
    }

    // MARK: Saved methods

    /// Detaches a method at its payment system (a method we call Removed must
    /// not be chargeable there), then marks it Removed.
    func removeMethod(_ method: PaymentMethod) async throws -> PaymentMethod {
        if method.status == .confirmed, !method.providerReference.isEmpty {
            try await providers.provider(method.system).removeMethod(method)
        }
        return try await store.removeMethod(method.id)
    }

    /// A saved method's reference sent after its payment was Paid (a PayPal
    /// vault id by webhook): the Pending method is Confirmed with it.
    func confirmLateMethod(
        paymentReference: String,
        system: PaymentSystem,
        method: SavedMethod
    ) async throws(BillingError) -> Bool {
        try await store.confirmLateMethod(
            paymentReference: paymentReference,
            system: system,
            methodReference: method.reference,
            displayName: method.displayName
        )
    }

    // MARK: The one transition

    /// A charge's answer, with a refused method marked Failed.
    private func apply(_ charge: ProviderCharge, to payment: Payment) async throws(BillingError) -> Payment {
        guard charge.methodUnusable, case .failed(let why) = charge.outcome else {
            return try await apply(charge.outcome, to: payment)
        }
        var outcome = TransitionOutcome.cancelled(why)
        outcome.chargedMethodUnusable = true
        return try await transition(payment, outcome)
    }

    /// A provider's answer applied through the store's single transition.
    private func apply(_ outcome: ProviderOutcome, to payment: Payment) async throws(BillingError) -> Payment {
        switch outcome {
        case .pending, .held:
            return payment
        case .paid(let saved?):
            return try await transition(
                payment,
                .paid(savedMethodReference: saved.reference, displayName: saved.displayName)
            )
        case .paid(nil):
            return try await transition(payment, .paid)
        case .failed(let reason):
            return try await transition(payment, .cancelled(reason))
        }
    }

    /// The transition; if someone else (poller, webhook, operator) moved the
    /// payment first, its current state is the answer.
    private func transition(_ payment: Payment, _ outcome: TransitionOutcome) async throws(BillingError) -> Payment {
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

/// Ids reported once per process.
private final class Reported: Sendable {
    private let ids = Mutex<Set<String>>([])

    /// True the first time for an id.
    func insert(_ id: String) -> Bool { ids.withLock { $0.insert(id).inserted } }
}
