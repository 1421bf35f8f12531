/// The rules of saved payment methods. A method follows the payment it was
/// saved with: Pending while that payment is New, Confirmed once it is Paid
/// with the payment system's reference of the method, Failed if it is
/// Cancelled (or the payment system never sends the reference). Removed is
/// the payer's choice and final. Only a Confirmed method can be the default
/// or be charged; a payer has at most one default.
public enum SavedMethods {
    /// A payer's customer at a payment system: the one recorded, or, for a
    /// payer saved before customers were recorded, the customer of its
    /// newest Confirmed Stripe method (whose reference is `cus_…/pm_…`).
    public static func customer(recorded: String?, methodReferences: [String], system: PaymentSystem) -> String? {
        if let recorded { return recorded }
        guard system == .stripe else { return nil }
        for reference in methodReferences {
            let parts = reference.split(separator: "/", omittingEmptySubsequences: false)
            if parts.count == 2, parts[0].hasPrefix("cus_"), !parts[1].isEmpty { return String(parts[0]) }
        }
        return nil
    }

    /// How a method being saved is named until it is: "Sandbox (pending)".
    static let pendingSuffix = " (pending)"
    /// How it is named once it failed: it was never saved.
    static let notSavedSuffix = " (not saved)"

    /// Makes a Confirmed method its payer's default; `currentDefault` (the
    /// payer's default now, if another) stops being it.
    ///
    /// - Throws: `failedPrecondition` for a method that is not Confirmed.
    public static func makeDefault(
        _ method: PaymentMethod,
        currentDefault: PaymentMethod?,
        now: Int64
    ) throws(BillingError) -> Change<PaymentMethod> {
        guard method.status == .confirmed else {
            throw .failedPrecondition(
                "payment method \(method.id) is \(method.status.rawValue); only a confirmed method can be the default"
            )
        }
        var effects: [Effect] = []
        if let old = currentDefault, old.id != method.id {
            var cleared = old
            cleared.isDefault = false
            cleared.updatedAtMs = now
            effects.append(.updateMethod(cleared, expected: old.status))
        }
        var chosen = method
        chosen.isDefault = true
        chosen.updatedAtMs = now
        effects.append(.updateMethod(chosen, expected: method.status))
        return Change(chosen, effects)
    }

    /// Marks a method Removed (the caller detaches it at the payment system
    /// first). Removing a Removed method changes nothing.
    public static func remove(_ method: PaymentMethod, account: Account, now: Int64) -> Change<PaymentMethod> {
        if method.status == .removed { return Change(method) }
        var list = EffectList(account: account, funds: Funds(balance: .zero(account.currency)), now: now)
        let removed = move(method, to: .removed, in: &list)
        return Change(removed, list.effects)
    }

    /// A method still Pending after its payment was Paid (PayPal sent the
    /// vault's id later, in a webhook): Confirmed now with that reference.
    /// `method` is the one saved with the Paid payment the webhook names (nil
    /// when there is no such payment): false when it is not Pending.
    public static func confirmLate(
        _ method: PaymentMethod?,
        account: Account?,
        reference: String,
        displayName: String,
        payerHasDefault: Bool,
        now: Int64
    ) throws(BillingError) -> Change<Bool> {
        try Text.check(reference, "method reference", max: 255, required: true)
        try Text.check(displayName, "display name", max: 200)
        guard let method, let account, method.status == .pending else { return Change(false) }
        var list = EffectList(account: account, funds: Funds(balance: .zero(account.currency)), now: now)
        confirm(
            method,
            .paid(savedMethodReference: reference, displayName: displayName),
            payerHasDefault: payerHasDefault,
            in: &list
        )
        return Change(true, list.effects)
    }

    /// A method still Pending long after its payment was Paid: the payment
    /// system never sent what it needs, so it ends Failed and the person is
    /// told, rather than Pending forever.
    public static func failStale(_ method: PaymentMethod, account: Account, paymentID: String, now: Int64) -> [Effect] {
        guard method.status == .pending else { return [] }
        var list = EffectList(account: account, funds: Funds(balance: .zero(account.currency)), now: now)
        move(method, to: .failed, in: &list)
        list.notify(
            .error,
            "Saving the method failed",
            "The payment system never sent the saved method; the payment itself went through. Save it again with your next payment.",
            paymentID: paymentID
        )
        return list.effects
    }

    /// The method saved with a Paid payment, Confirmed with the payment
    /// system's reference. Without one (PayPal may send a vault's id later)
    /// it stays Pending: a Confirmed method must be chargeable.
    static func confirm(
        _ method: PaymentMethod,
        _ outcome: TransitionOutcome,
        payerHasDefault: Bool,
        in list: inout EffectList
    ) {
        guard let reference = outcome.savedMethodReference, !reference.isEmpty, method.status == .pending else {
            return
        }
        var confirmed = method
        confirmed.status = .confirmed
        confirmed.isDefault = !payerHasDefault
        confirmed.providerReference = reference
        confirmed.displayName = outcome.savedMethodDisplayName ?? method.displayName
        confirmed.updatedAtMs = list.now
        list.append(.updateMethod(confirmed, expected: .pending))
        list.event(.methodStatusChanged(confirmed, previous: .pending))
    }

    /// A method to Failed or Removed: never the default after; a method that
    /// failed before it was saved is named so ("Sandbox (not saved)").
    @discardableResult
    static func move(
        _ method: PaymentMethod,
        to status: PaymentMethodStatus,
        in list: inout EffectList
    ) -> PaymentMethod {
        var moved = method
        moved.status = status
        moved.isDefault = false
        moved.updatedAtMs = list.now
        if status == .failed {
            moved.displayName = replacing(pendingSuffix, with: notSavedSuffix, in: method.displayName)
        }
        list.append(.updateMethod(moved, expected: method.status))
        list.event(.methodStatusChanged(moved, previous: method.status))
        return moved
    }

    /// Every occurrence of `target` in `text` replaced (as SQL's REPLACE did).
    private static func replacing(_ target: String, with replacement: String, in text: String) -> String {
        var result = ""
        var rest = Substring(text)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
