internal import BillingCore
internal import BillingMessages

/// Domain values to API messages and back. Incoming values are checked here
/// (currency known, amount given, enum known); the domain checks the rules.

extension BillingV1.Money {
    init(_ money: Money) {
        self.init()
        amountMinorUnits = money.amountMinorUnits
        currency = money.currency.code
    }
}

extension Money {
    /// - Throws: INVALID_ARGUMENT-mapped errors for a missing amount or an unknown currency.
    init(_ proto: BillingV1.Money?, field: String) throws(BillingError) {
        guard let proto else { throw .invalidArgument("\(field) is required") }
        let currency = try Currency(code: proto.currency)
        self.init(minorUnits: proto.amountMinorUnits, currency)
    }
}

extension BillingV1.PaymentStatus {
    init(_ status: PaymentStatus?) {
        switch status {
        case .new?: self = .new
        case .paid?: self = .paid
        case .cancelled?: self = .cancelled
        case nil: self = .unspecified
        }
    }

    var domain: PaymentStatus? {
        switch self {
        case .new: return .new
        case .paid: return .paid
        case .cancelled: return .cancelled
        default: return nil
        }
    }
}

extension BillingV1.PaymentPurpose {
    init(_ purpose: PaymentPurpose) {
        switch purpose {
        case .topUp: self = .topUp
        case .renewal: self = .renewal
        case .migration: self = .migration
        }
    }

    var domain: PaymentPurpose? {
        switch self {
        case .topUp: return .topUp
        case .renewal: return .renewal
        case .migration: return .migration
        default: return nil
        }
    }
}

extension BillingV1.PaymentSystem {
    init(_ system: PaymentSystem?) {
        switch system {
        case .stripe?: self = .stripe
        case .paypal?: self = .paypal
        case .sandbox?: self = .sandbox
        case nil: self = .unspecified
        }
    }

    var domain: PaymentSystem? {
        switch self {
        case .stripe: return .stripe
        case .paypal: return .paypal
        case .sandbox: return .sandbox
        default: return nil
        }
    }
}

extension BillingV1.PaymentMethodStatus {
    init(_ status: PaymentMethodStatus?) {
        switch status {
        case .pending?: self = .pending
        case .confirmed?: self = .confirmed
        case .failed?: self = .failed
        case .removed?: self = .removed
        case nil: self = .unspecified
        }
    }
}

extension BillingV1.PaymentOptionKind {
    init(_ kind: PaymentOptionKind) {
        switch kind {
        case .invoice: self = .invoice
        case .savedMethod: self = .savedMethod
        case .paymentSystem: self = .paymentSystem
        case .balance: self = .balance
        }
    }
}

extension PaymentOption {
    /// - Throws: INVALID_ARGUMENT when absent or incomplete.
    init(_ proto: BillingV1.PaymentOption?) throws(BillingError) {
        switch proto?.option {
        case .invoice?: self = .invoice
        case .balance?: self = .balance
        case .savedMethod(let saved)?:
            try IDs.check(saved.paymentMethodId, "payment method id")
            self = .savedMethod(id: saved.paymentMethodId)
        case .paymentSystem(let system)?:
            guard let chosen = system.system.domain else {
                throw .invalidArgument("choose a payment system: stripe, paypal or sandbox")
            }
            self = .paymentSystem(chosen, saveMethod: system.saveMethod, returnURL: system.returnUrl)
        case nil:
            throw .invalidArgument("a payment option is required: invoice, saved method or payment system")
        }
    }
}

extension BillingV1.Account {
    init(_ account: Account) {
        self.init()
        id = account.id
        displayName = account.displayName
        currency = account.currency.code
        createdAtUnixMs = account.createdAtMs
    }
}

extension BillingV1.Payer {
    init(_ payer: Payer) {
        self.init()
        id = payer.id
        accountId = payer.accountID
        displayName = payer.displayName
        email = payer.email
        createdAtUnixMs = payer.createdAtMs
    }
}

extension BillingV1.PaymentMethod {
    init(_ method: PaymentMethod) {
        self.init()
        id = method.id
        payerId = method.payerID
        system = BillingV1.PaymentSystem(method.system)
        status = BillingV1.PaymentMethodStatus(method.status)
        isDefault = method.isDefault
        displayName = method.displayName
        savedWithPaymentId = method.savedWithPaymentID
        createdAtUnixMs = method.createdAtMs
        updatedAtUnixMs = method.updatedAtMs
    }
}

extension BillingV1.Payment {
    init(_ payment: Payment) {
        self.init()
        id = payment.id
        accountId = payment.accountID
        payerId = payment.payerID
        purpose = BillingV1.PaymentPurpose(payment.purpose)
        amount = BillingV1.Money(payment.amount)
        status = BillingV1.PaymentStatus(payment.status)
        optionKind = BillingV1.PaymentOptionKind(payment.optionKind)
        system = BillingV1.PaymentSystem(payment.system)
        paymentMethodId = payment.paymentMethodID ?? ""
        savedPaymentMethodId = payment.savedPaymentMethodID ?? ""
        providerReference = payment.providerReference
        redirectUrl = payment.status == .new ? payment.redirectURL : ""
        invoiceNumber = payment.invoiceNumber ?? ""
        failureReason = payment.failureReason
        renewalOrderId = payment.renewalOrderID ?? ""
        migrationOrderId = payment.migrationOrderID ?? ""
        createdAtUnixMs = payment.createdAtMs
        updatedAtUnixMs = payment.updatedAtMs
        finishedAtUnixMs = payment.finishedAtMs ?? 0
        nextCheckAtUnixMs = payment.nextCheckAtMs ?? 0
        checkAttempts = UInt32(clamping: payment.checkAttempts)
    }
}

extension BillingV1.Notification {
    init(_ notification: Notification) {
        self.init()
        id = notification.id
        accountId = notification.accountID
        severity = notification.severity == .error ? .error : .info
        title = notification.title
        body = notification.body
        paymentId = notification.paymentID ?? ""
        createdAtUnixMs = notification.createdAtMs
    }
}

extension BillingV1.PaymentEvent {
    /// - Parameter global: the global sequence (WatchAllPayments) rather than
    ///   the account's own (WatchPayments).
    init(_ event: BillingCore.Event, global: Bool) {
        self.init()
        sequence = global ? event.sequence : event.accountSequence
        accountId = event.accountID
        atUnixMs = event.atMs
        switch event.change {
        case .paymentStatusChanged(let payment, let previous):
            var changed = BillingV1.PaymentStatusChanged()
            changed.payment = BillingV1.Payment(payment)
            changed.previousStatus = BillingV1.PaymentStatus(previous)
            self.event = .paymentStatusChanged(changed)
        case .methodStatusChanged(let method, let previous):
            var changed = BillingV1.PaymentMethodStatusChanged()
            changed.method = BillingV1.PaymentMethod(method)
            changed.previousStatus = BillingV1.PaymentMethodStatus(previous)
            self.event = .methodStatusChanged(changed)
        case .balanceChanged(let balance, let delta, let paymentID, let reference):
            var changed = BillingV1.BalanceChanged()
            changed.balance = BillingV1.Money(balance)
            changed.delta = BillingV1.Money(delta)
            changed.paymentId = paymentID ?? ""
            changed.reference = reference
            self.event = .balanceChanged(changed)
        case .notification(let notification):
            self.event = .notification(BillingV1.Notification(notification))
        case .paymentReversed(let reversal):
            var reversed = BillingV1.PaymentReversed()
            reversed.paymentId = reversal.paymentID
            reversed.kind =
                switch reversal.kind {
                case .refund: .refund
                case .chargeback: .chargeback
                case .chargebackWon: .chargebackWon
                }
            reversed.amount = BillingV1.Money(reversal.amount)
            reversed.reversalReference = reversal.reference
            reversed.reason = reversal.reason
            self.event = .paymentReversed(reversed)
        }
    }
}

extension BillingV1.RenewableService {
    init(_ service: RenewableService) {
        self.init()
        id = service.id
        accountId = service.accountID
        displayName = service.displayName
        pricePerPeriod = BillingV1.Money(service.pricePerPeriod)
        periodDays = UInt32(clamping: service.periodDays)
        expiresAtUnixMs = service.expiresAtMs
        updatedAtUnixMs = service.updatedAtMs
        autoRenewal = service.autoRenewal.map { auto in
            var proto = BillingV1.AutoRenewal()
            proto.daysBefore = UInt32(clamping: auto.daysBefore)
            proto.payerId = auto.payerID ?? ""
            proto.nextAttemptAtUnixMs = auto.nextAttemptAtMs ?? 0
            return proto
        }
    }
}

extension AutoRenewal {
    /// Nil (off) for an absent setting or 0 days; INVALID_ARGUMENT for a
    /// malformed payer id (its account is checked by the store).
    static func from(_ proto: BillingV1.AutoRenewal?) throws(BillingError) -> AutoRenewal? {
        guard let proto, proto.daysBefore != 0 else { return nil }
        guard proto.daysBefore <= UInt32(AutoRenewals.maxDaysBefore) else {
            throw .invalidArgument("automatic renewal is 1 to \(AutoRenewals.maxDaysBefore) days before expiry")
        }
        if !proto.payerId.isEmpty { try IDs.check(proto.payerId, "payer id") }
        return AutoRenewal(daysBefore: Int(proto.daysBefore), payerID: proto.payerId.isEmpty ? nil : proto.payerId)
    }
}

extension BillingV1.RenewalLine {
    init(_ line: RenewalLine) {
        self.init()
        serviceId = line.serviceID
        periods = UInt32(clamping: line.periods)
        amount = BillingV1.Money(line.amount)
        newExpiresAtUnixMs = line.newExpiresAtMs
    }
}

extension BillingV1.RenewalOrder {
    init(_ order: RenewalOrder) {
        self.init()
        id = order.id
        accountId = order.accountID
        lines = order.lines.map(BillingV1.RenewalLine.init)
        total = BillingV1.Money(order.total)
        fromBalance = BillingV1.Money(order.fromBalance)
        switch order.status {
        case .awaitingPayment: status = .awaitingPayment
        case .completed: status = .completed
        case .cancelled: status = .cancelled
        }
        paymentId = order.paymentID ?? ""
        automatic = order.autoPeriodMs != nil
        createdAtUnixMs = order.createdAtMs
        completedAtUnixMs = order.completedAtMs ?? 0
    }
}

extension BillingV1.MigrationOrder {
    init(_ order: MigrationOrder) {
        self.init()
        id = order.id
        accountId = order.accountID
        externalId = order.externalID
        description = order.description
        serverPrice = BillingV1.Money(order.serverPrice)
        switch order.status {
        case .awaitingPayment: status = .awaitingPayment
        case .paymentPending: status = .paymentPending
        case .paid: status = .paid
        }
        paymentId = order.paymentID ?? ""
        createdAtUnixMs = order.createdAtMs
        paidAtUnixMs = order.paidAtMs ?? 0
    }
}

extension BillingV1.Invoice {
    init(_ document: InvoiceDocument) {
        self.init()
        let invoice = document.invoice
        number = invoice.number
        paymentId = invoice.paymentID
        accountId = invoice.accountID
        payerId = invoice.payerID
        payerName = invoice.payerName
        payerEmail = invoice.payerEmail
        description = invoice.description
        amount = BillingV1.Money(invoice.amount)
        issuedAtUnixMs = invoice.issuedAtMs
        dueAtUnixMs = invoice.dueAtMs
        switch document.state {
        case .open: state = .open
        case .paid: state = .paid
        case .void: state = .void
        }
        issuerName = invoice.issuer.name
        issuerLines = invoice.issuer.lines
        bankLines = invoice.issuer.bankLines
        legalText = invoice.issuer.legalText
        // The payment's own schedule: set when it was issued, with the grace of that day.
        voidAtUnixMs = document.state == .open ? (document.payment.nextCheckAtMs ?? 0) : 0
    }
}
