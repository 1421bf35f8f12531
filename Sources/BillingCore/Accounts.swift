/// The rules of accounts and their payers: an account is created once per
/// id in a configured currency; payers are named people of one account.
public enum Accounts {
    /// An account; the same id with the same fields is the account created
    /// before (`existing`).
    ///
    /// - Throws: `alreadyExists` when `existing` has other fields;
    ///   `invalidArgument` for a currency that is not configured.
    public static func create(
        id: String,
        displayName: String,
        currency: Currency,
        existing: Account?,
        limits: PaymentLimits,
        now: Int64
    ) throws(BillingError) -> Change<Account> {
        try IDs.check(id, "account id")
        try Text.check(displayName, "display name", max: 200)
        try limits.checkAccountCurrency(currency)
        if let existing {
            guard existing.displayName == displayName, existing.currency == currency else {
                throw .alreadyExists("account \(id) exists with other fields")
            }
            return Change(existing)
        }
        let account = Account(id: id, displayName: displayName, currency: currency, createdAtMs: now)
        return Change(account, [.insertAccount(account)])
    }

    /// A payer of `account`: a name people recognise (required) and an
    /// email (RFC 5321 allows 254 bytes).
    public static func addPayer(
        to account: Account,
        displayName: String,
        email: String,
        now: Int64
    ) throws(BillingError) -> Change<Payer> {
        try Text.check(displayName, "payer name", max: 200, required: true)
        try Text.check(email, "email", max: 254)
        if !email.isEmpty {
            let parts = email.split(separator: "@", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty,
                !email.unicodeScalars.contains(where: {
                    $0.properties.isWhitespace || $0.properties.isDefaultIgnorableCodePoint
                        || "<>\"'(),;:[]\\".unicodeScalars.contains($0)
                })
            else { throw .invalidArgument("email must look like name@example.com") }
        }
        let payer = Payer(
            id: IDs.make("pyr"),
            accountID: account.id,
            displayName: displayName,
            email: email,
            createdAtMs: now
        )
        return Change(payer, [.insertPayer(payer)])
    }

    /// A payer's customer at a payment system (Stripe's cus_…), recorded once
    /// it was made so that it is made once and reused.
    public static func recordCustomer(
        payerID: String,
        system: PaymentSystem,
        reference: String
    ) throws(BillingError) -> Change<Void> {
        try Text.check(reference, "customer reference", max: 255, required: true)
        return Change((), [.payerCustomer(payerID: payerID, system: system, reference: reference)])
    }
}
