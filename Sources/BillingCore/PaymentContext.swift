/// A payment and everything its end touches, read together in the
/// transaction that will write the end: what `PaymentMachine.finish` decides on.
public struct PaymentContext: Sendable, Hashable {
    public var payment: Payment
    public var account: Account
    /// The account's balance now (the cached sum of its ledger) and what
    /// renewals awaiting payment hold of it.
    public var funds: Funds
    /// The method being saved with this payment (`savedPaymentMethodID`).
    public var savedMethod: PaymentMethod?
    /// The saved method this payment charges (`paymentMethodID`).
    public var chargedMethod: PaymentMethod?
    /// Whether the payer has a default method now: a method saved without
    /// one becomes it.
    public var payerHasDefaultMethod: Bool
    /// The renewal order the payment pays, with the services it renews.
    public var renewalOrder: RenewalOrder?
    public var renewedServices: [RenewableService]
    /// The migration order the payment pays.
    public var migrationOrder: MigrationOrder?

    public init(
        payment: Payment,
        account: Account,
        funds: Funds,
        savedMethod: PaymentMethod? = nil,
        chargedMethod: PaymentMethod? = nil,
        payerHasDefaultMethod: Bool = false,
        renewalOrder: RenewalOrder? = nil,
        renewedServices: [RenewableService] = [],
        migrationOrder: MigrationOrder? = nil
    ) {
        self.payment = payment
        self.account = account
        self.funds = funds
        self.savedMethod = savedMethod
        self.chargedMethod = chargedMethod
        self.payerHasDefaultMethod = payerHasDefaultMethod
        self.renewalOrder = renewalOrder
        self.renewedServices = renewedServices
        self.migrationOrder = migrationOrder
    }
}
