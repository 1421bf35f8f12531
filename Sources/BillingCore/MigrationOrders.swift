/// The rules of paying for the server of an ordered migration: an order is
/// registered once per external id with its price, and paid once, from the
/// balance at once or through a payment whose Paid end credits, then debits.
public enum MigrationOrders {
    /// Registers an order; the same external id with the same fields is the
    /// order registered before (`existing`).
    ///
    /// - Throws: `alreadyExists` when `existing` has other fields.
    public static func register(
        account: Account,
        externalID: String,
        description: String,
        serverPrice: Money,
        existing: MigrationOrder?,
        now: Int64
    ) throws(BillingError) -> Change<MigrationOrder> {
        try IDs.check(externalID, "external id")
        try Text.check(description, "description", max: 500)
        guard serverPrice.amountMinorUnits > 0 else { throw .invalidArgument("server price must be positive") }
        guard serverPrice.currency == account.currency else {
            throw .invalidArgument("account \(account.id) pays in \(account.currency), not \(serverPrice.currency)")
        }
        if let existing {
            guard existing.serverPrice == serverPrice, existing.description == description else {
                throw .alreadyExists("migration order \(externalID) exists with other fields")
            }
            return Change(existing)
        }
        let order = MigrationOrder(
            id: IDs.make("mo"),
            accountID: account.id,
            externalID: externalID,
            description: description,
            serverPrice: serverPrice,
            status: .awaitingPayment,
            paymentID: nil,
            createdAtMs: now,
            paidAtMs: nil
        )
        return Change(order, [.insertMigrationOrder(order)])
    }

    /// Pays an order. From the balance: a debit the available funds must cover, or
    /// `insufficientFunds`. Otherwise: a New payment the order waits for.
    ///
    /// - Throws: `failedPrecondition` for an order that is paid or has a
    ///   payment pending.
    public static func pay(
        _ order: MigrationOrder,
        account: Account,
        funds: Funds,
        payerID: String?,
        payer: Payer?,
        option: PaymentOption,
        chargedMethod: PaymentMethod?,
        limits: PaymentLimits,
        invoice: InvoiceIssue?,
        now: Int64
    ) throws(BillingError) -> Change<(order: MigrationOrder, payment: Payment?)> {
        guard order.status == .awaitingPayment else {
            throw .failedPrecondition("migration order \(order.id) is \(order.status.rawValue)")
        }
        var list = EffectList(account: account, funds: funds, now: now)
        if case .balance = option {
            let paid = try complete(order, in: &list)
            return Change((paid, nil), list.effects)
        }
        guard let payerID else { throw .invalidArgument("payer id is required unless paying from the balance") }
        let recorded = try PaymentMachine.record(
            purpose: .migration,
            amount: order.serverPrice,
            account: account,
            payerID: payerID,
            payer: payer,
            option: option,
            chargedMethod: chargedMethod,
            limits: limits,
            invoice: invoice,
            invoiceDescription: "Server for migration \(order.externalID): \(order.description) (order \(order.id))",
            migrationOrderID: order.id,
            now: now
        )
        var pending = order
        pending.status = .paymentPending
        pending.paymentID = recorded.result.id
        return Change(
            (pending, recorded.result),
            recorded.effects + [.updateMigrationOrder(pending, expected: order.status)]
        )
    }

    /// The debit of an order and its Paid mark.
    static func complete(_ order: MigrationOrder, in list: inout EffectList) throws(BillingError) -> MigrationOrder {
        try list.debit(order.serverPrice, key: "debit:\(order.id)", reference: "migration order \(order.id)")
        var paid = order
        paid.status = .paid
        paid.paidAtMs = list.now
        list.append(.updateMigrationOrder(paid, expected: order.status))
        return paid
    }
}
